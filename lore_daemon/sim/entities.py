"""Issue, MR, project, user and version payloads, shaped like GitLab's Grape entities.

Each entity's fixed traits (title, people, labels, branches...) come from a generator seeded by
``(seed, project, kind, iid)`` and are cached; its timestamps and state come from the core
columns in ``data.py`` (so mutations show), and its overlay adds mutation results on top.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lore_daemon.sim.corpus import curate_traits
from lore_daemon.sim.data import (
    DAY_MS,
    LABEL_NAMES,
    USER_COUNT,
    Dataset,
    EntityTable,
    Kind,
    ProjectInfo,
    rng_for,
    sha1_hex,
)
from lore_daemon.sim.diffs import diff_files, mr_shas
from lore_daemon.sim.notes import user_note_count
from lore_daemon.timeutil import ms_to_iso

_VERBS = ["Fix", "Add", "Improve", "Refactor", "Document", "Remove", "Speed up", "Harden", "Test"]
_THINGS = [
    "crash",
    "timeout",
    "race",
    "memory leak",
    "flaky test",
    "error message",
    "retry logic",
    "pagination",
    "cache",
    "migration",
    "search index",
    "login flow",
    "export",
    "webhook",
]
_PLACES = [
    "in the sync worker",
    "on the settings page",
    "for large projects",
    "in the API client",
    "when the token expires",
    "during startup",
    "in the CLI",
    "on slow networks",
]
_CACHE_LIMIT = 20_000  # traits kept; beyond this the cache starts over (memory stays flat)


@dataclass(frozen=True, slots=True)
class Traits:
    """What never changes about a generated entity."""

    title: str
    description: str
    author: int
    assignees: tuple[int, ...]
    reviewers: tuple[int, ...]
    labels: tuple[str, ...]
    milestone: int | None  # index into the project's milestones
    confidential: bool
    due_date: str | None
    upvotes: int
    downvotes: int
    closed_at: int | None  # for generated closed/merged states
    closer: int
    merged_at: int | None
    tasks: tuple[int, int]  # (count, completed)
    draft: bool
    source_branch: str
    target_branch: str
    closes: tuple[int, ...]  # issue iids this MR closes (empty unless it targets the default branch)


class Entities:
    """Builds entity payloads for one data set; caches traits (never payloads, which can change)."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        self._traits: dict[tuple[int, Kind, int], Traits] = {}

    def traits(self, table: EntityTable, iid: int) -> Traits:
        key = (table.project_id, table.kind, iid)
        found = self._traits.get(key)
        if found is None:
            if len(self._traits) >= _CACHE_LIMIT:
                self._traits.clear()
            found = self._traits[key] = curate_traits(table, iid, self._make_traits(table, iid))
        return found

    def _make_traits(self, table: EntityTable, iid: int) -> Traits:
        rng = rng_for(self.ds.seed, table.project_id, table.kind, iid, "traits")
        created, updated = table.created[iid], table.base_updated[iid]
        title = f"{rng.choice(_VERBS)} {rng.choice(_THINGS)} {rng.choice(_PLACES)}"
        people = rng.sample(range(2, USER_COUNT + 1), 5)
        n_issues = self.ds.table(table.project_id, "issue").seeded
        closes: tuple[int, ...] = ()
        target = "main"
        if table.kind == "mr":
            if rng.random() < 0.1:
                target = "stable-1.x"
            if n_issues:
                closes = tuple(sorted({rng.randint(1, n_issues) for _ in range(rng.choice((0, 1, 1, 2, 3)))}))
        tasks_total = rng.choice((0, 0, 0, 2, 3, 5))
        tasks = (tasks_total, rng.randint(0, tasks_total))
        description = self._description(rng, table.kind, closes, tasks, n_issues)
        if table.kind == "mr" and target != "main":
            closes = ()  # GitLab only closes issues from MRs into the default branch
        closing = table.base_state[iid] in ("closed", "merged")
        closed_at = (
            updated if rng.random() < 0.5 else created + int((updated - created) * rng.uniform(0.6, 1))
        )
        milestones = len(self.ds.milestones[table.project_id])
        draft = table.kind == "mr" and table.base_state[iid] == "opened" and rng.random() < 0.2
        return Traits(
            title=f"Draft: {title}" if draft else title,
            description=description,
            author=people[0],
            assignees=tuple(people[1 : 1 + rng.choice((0, 1, 1, 2))]),
            reviewers=tuple(people[3 : 3 + rng.choice((0, 1, 2))]) if table.kind == "mr" else (),
            labels=tuple(sorted(rng.sample(LABEL_NAMES, rng.choice((0, 1, 1, 2, 3))))),
            milestone=rng.randrange(milestones) if rng.random() < 0.6 else None,
            confidential=table.kind == "issue" and rng.random() < 0.04,
            due_date=ms_to_iso(created + 30 * DAY_MS)[:10] if rng.random() < 0.2 else None,
            upvotes=rng.choice((0, 0, 0, 1, 2, 5)),
            downvotes=rng.choice((0, 0, 0, 0, 1)),
            closed_at=closed_at if closing else None,
            closer=people[1],
            merged_at=closed_at if table.base_state[iid] == "merged" else None,
            tasks=tasks,
            draft=draft,
            source_branch=f"{iid}-{title.lower().replace(' ', '-')[:40]}",
            target_branch=target,
            closes=closes,
        )

    @staticmethod
    def _description(rng: Any, kind: Kind, closes: tuple[int, ...], tasks: tuple[int, int], n: int) -> str:
        lines = [
            "Steps to reproduce and expected behaviour are below.",
            f"Observed {rng.randint(2, 900)} times in the last week.",
        ]
        if n and rng.random() < 0.3:
            lines.append(f"Related to #{rng.randint(1, n)}.")
        lines += [f"- [{'x' if t < tasks[1] else ' '}] step {t + 1}" for t in range(tasks[0])]
        if kind == "mr" and closes:
            lines.append("Closes " + ", ".join(f"#{i}" for i in closes) + ".")
        return "\n".join(lines)

    # --- payloads -------------------------------------------------------------------------

    def user(self, user_id: int | None) -> dict[str, Any] | None:
        return None if user_id is None else self.ds.user(user_id)

    def milestone(self, project_id: int, index: int | None) -> dict[str, Any] | None:
        return None if index is None else self.ds.milestones[project_id][index]

    def closure(self, table: EntityTable, iid: int) -> tuple[int | None, int | None]:
        """(closed_at, closed_by user id), honouring close/reopen mutations."""
        overlay = table.overlays.get(iid)
        if overlay is not None and overlay.closure_set:
            return overlay.closed_at, overlay.closed_by
        traits = self.traits(table, iid)
        if table.base_state[iid] == "closed":
            return traits.closed_at, traits.closer
        return None, None

    def labels(self, table: EntityTable, iid: int) -> list[str]:
        overlay = table.overlays.get(iid)
        base = self.traits(table, iid).labels
        if overlay is None or not overlay.labels_added:
            return list(base)
        return sorted(set(base) | set(overlay.labels_added))

    def _common(self, project: ProjectInfo, table: EntityTable, iid: int) -> dict[str, Any]:
        traits = self.traits(table, iid)
        closed_at, closed_by = self.closure(table, iid)
        sigil = "#" if table.kind == "issue" else "!"
        assignees = [self.ds.user(u) for u in traits.assignees]
        return {
            "id": table.gid(iid),
            "iid": iid,
            "project_id": project.id,
            "title": traits.title,
            "description": traits.description,
            "state": table.state[iid],
            "created_at": ms_to_iso(table.created[iid]),
            "updated_at": ms_to_iso(table.updated[iid]),
            "closed_at": None if closed_at is None else ms_to_iso(closed_at),
            "closed_by": self.user(closed_by),
            "labels": self.labels(table, iid),
            "milestone": self.milestone(project.id, traits.milestone),
            "assignees": assignees,
            "author": self.ds.user(traits.author),
            "assignee": assignees[0] if assignees else None,
            "user_notes_count": user_note_count(self.ds, table, iid),
            "upvotes": traits.upvotes,
            "downvotes": traits.downvotes,
            "discussion_locked": None,
            "web_url": self.ds.web_url(project, table.kind, iid),
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "task_completion_status": {"count": traits.tasks[0], "completed_count": traits.tasks[1]},
            "references": {
                "short": f"{sigil}{iid}",
                "relative": f"{sigil}{iid}",
                "full": f"{project.path_with_namespace}{sigil}{iid}",
            },
            "imported": False,
            "imported_from": "none",
        }

    def issue(self, project: ProjectInfo, iid: int) -> dict[str, Any]:
        table = self.ds.table(project.id, "issue")
        traits = self.traits(table, iid)
        payload = self._common(project, table, iid)
        api = f"{self.ds.base_url}/api/v4/projects/{project.id}"
        payload.update(
            {
                "type": "ISSUE",
                "issue_type": "issue",
                "merge_requests_count": 0,
                "due_date": traits.due_date,
                "confidential": traits.confidential,
                "severity": "UNKNOWN",
                "moved_to_id": None,
                "service_desk_reply_to": None,
                "has_tasks": traits.tasks[0] > 0,
                "task_status": f"{traits.tasks[1]} of {traits.tasks[0]} checklist items completed",
                "_links": {
                    "self": f"{api}/issues/{iid}",
                    "notes": f"{api}/issues/{iid}/notes",
                    "award_emoji": f"{api}/issues/{iid}/award_emoji",
                    "project": api,
                    "closed_as_duplicate_of": None,
                },
            }
        )
        return payload

    def merge_request(self, project: ProjectInfo, iid: int, *, single: bool = False) -> dict[str, Any]:
        table = self.ds.table(project.id, "mr")
        traits = self.traits(table, iid)
        payload = self._common(project, table, iid)
        merged = table.state[iid] == "merged"
        shas = mr_shas(self.ds.seed, project.id, iid)
        opened = table.state[iid] == "opened"
        payload.update(
            {
                "merged_by": self.ds.user(traits.closer) if merged else None,
                "merge_user": self.ds.user(traits.closer) if merged else None,
                "merged_at": ms_to_iso(traits.merged_at) if traits.merged_at is not None else None,
                "target_branch": traits.target_branch,
                "source_branch": traits.source_branch,
                "reviewers": [self.ds.user(u) for u in traits.reviewers],
                "source_project_id": project.id,
                "target_project_id": project.id,
                "draft": traits.draft,
                "work_in_progress": traits.draft,
                "merge_when_pipeline_succeeds": False,
                "merge_status": "can_be_merged",
                "detailed_merge_status": ("draft_status" if traits.draft else "mergeable")
                if opened
                else "not_open",
                "merge_after": None,
                "sha": shas["head_sha"],
                "merge_commit_sha": sha1_hex(f"{shas['head_sha']}:merge") if merged else None,
                "squash_commit_sha": None,
                "should_remove_source_branch": None,
                "force_remove_source_branch": True,
                "prepared_at": payload["created_at"],
                "reference": f"!{iid}",
                "squash": False,
                "squash_on_merge": False,
                "has_conflicts": False,
                "blocking_discussions_resolved": True,
            }
        )
        if single:
            payload.update(
                {
                    "subscribed": False,
                    "changes_count": str(len(diff_files(self.ds, project.id, iid))),
                    "latest_build_started_at": None,
                    "latest_build_finished_at": None,
                    "first_deployed_to_production_at": None,
                    "pipeline": None,
                    "head_pipeline": None,
                    "diff_refs": shas,
                    "merge_error": None,
                    "first_contribution": False,
                    "user": {"can_merge": True},
                    "approvals_before_merge": None,
                    "rebase_in_progress": False,
                }
            )
        return payload

    def project(self, project: ProjectInfo) -> dict[str, Any]:
        ns_path = project.namespace_path
        web = self.ds.web_url(project)
        host = self.ds.base_url.split("://", 1)[1].split(":")[0]
        issues = self.ds.table(project.id, "issue")
        mrs = self.ds.table(project.id, "mr")
        last = max(issues.updated[1:] + mrs.updated[1:] + [project.created_ms])
        return {
            "id": project.id,
            "name": project.name,
            "name_with_namespace": " / ".join(
                part.capitalize() for part in project.path_with_namespace.split("/")
            ),
            "description": project.description,
            "path": project.path,
            "path_with_namespace": project.path_with_namespace,
            "created_at": ms_to_iso(project.created_ms),
            "default_branch": "main",
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": f"git@{host}:{project.path_with_namespace}.git",
            "http_url_to_repo": f"{web}.git",
            "web_url": web,
            "readme_url": f"{web}/-/blob/main/README.md",
            "avatar_url": None,
            "star_count": 3,
            "forks_count": 0,
            "last_activity_at": ms_to_iso(last),
            "namespace": {
                "id": project.namespace_id,
                "name": ns_path.rsplit("/", 1)[-1],
                "path": ns_path.rsplit("/", 1)[-1],
                "kind": "group",
                "full_path": ns_path,
                "parent_id": project.namespace_parent_id,
                "avatar_url": None,
                "web_url": f"{self.ds.base_url}/groups/{ns_path}",
            },
        }

    def current_user(self) -> dict[str, Any]:
        """``GET /user``: the token owner, with the fields of GitLab's public user schema."""
        created = ms_to_iso(self.ds.projects[1].created_ms - 100 * DAY_MS)
        return {
            **self.ds.user(1),
            "email": "sim-bot@example.com",
            "created_at": created,
            "bio": "",
            "location": None,
            "skype": "",
            "linkedin": "",
            "twitter": "",
            "discord": "",
            "website_url": "",
            "organization": None,
            "job_title": "",
            "public_email": None,
            "bot": False,
            "last_sign_in_at": created,
            "confirmed_at": created,
            "last_activity_on": None,
            "color_scheme_id": 1,
            "theme_id": 1,
            "projects_limit": 100000,
            "current_sign_in_at": created,
            "identities": [],
            "can_create_group": True,
            "can_create_project": True,
            "two_factor_enabled": False,
            "external": False,
            "private_profile": False,
            "commit_email": "sim-bot@example.com",
            "is_admin": False,
        }

    def metadata(self) -> dict[str, Any]:
        return {
            "version": self.ds.config.version,
            "revision": sha1_hex(self.ds.config.version)[:11],
            "kas": {"enabled": False, "externalUrl": None, "version": None},
            "enterprise": False,
        }
