"""``closes_issues`` of an MR: the project's issues it closes, and external tracker issues.

On a project with an external issue tracker (Jira, YouTrack, Redmine…: the per-project
``external_tracker`` option) closing references to that tracker come back as
``Entities::ExternalIssue`` — ``{"title": "External Issue PROJ-123", "id": "PROJ-123"}``, a
**string** id (digits only for numeric trackers) and no iid — next to the internal issues
(API-NOTES §5.13b; gitlabhq ``lib/api/merge_requests.rb``, ``app/models/external_issue.rb``).
Internal issues are left out when the project's Issues feature is off: the token cannot read them.
"""

from __future__ import annotations

from typing import Any

from lore_daemon.sim.data import ProjectInfo, rng_for
from lore_daemon.sim.entities import Entities

TRACKER_KEY = "PROJ"


def external_ids(seed: int, project_id: int, mr_iid: int) -> list[str]:
    """The external issues an MR closes (0 to 2; about a third of them numeric-only)."""
    rng = rng_for(seed, project_id, "mr", mr_iid, "external-closes")
    count = rng.choice((0, 1, 1, 2))
    out: list[str] = []
    for _ in range(count):
        number = rng.randint(1, 9_999)
        ref = str(number) if rng.random() < 0.3 else f"{TRACKER_KEY}-{number}"
        if ref not in out:
            out.append(ref)
    return out


def closes_issues(ents: Entities, project: ProjectInfo, mr_iid: int) -> list[dict[str, Any]]:
    """The whole list, internal issues (in iid order) before external ones."""
    ds = ents.ds
    settings = ds.settings[project.id]
    items: list[dict[str, Any]] = []
    if settings.issues_enabled:
        issues = ds.table(project.id, "issue")
        closes = ents.traits(ds.table(project.id, "mr"), mr_iid).closes
        items += [ents.issue(project, i) for i in closes if issues.visible(i)]
    into_default = ents.traits(ds.table(project.id, "mr"), mr_iid).target_branch == "main"
    if settings.external_tracker and into_default:
        refs = external_ids(ds.seed, project.id, mr_iid)
        items += [{"title": f"External Issue {ref}", "id": ref} for ref in refs]
    return items
