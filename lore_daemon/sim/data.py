"""The seeded data set's skeleton: projects, users, labels, milestones and per-entity core columns.

Only what list endpoints must sort and filter on is materialised up front (created/updated
timestamps and state, one Python list each, indexed by iid). Everything else — titles, notes,
events, diffs — is derived lazily from ``(seed, project, kind, iid)`` in ``entities.py`` and
``dependents.py``, so 50,000 issues cost a few lists of ints. Mutations are overlays on top.
"""

from __future__ import annotations

import bisect
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any, Literal

from lore_daemon.sim.config import ProjectSettings, SimConfig
from lore_daemon.timeutil import iso_to_ms, ms_to_iso

Kind = Literal["issue", "mr"]
KINDS: tuple[Kind, Kind] = ("issue", "mr")

START_MS = iso_to_ms("2024-01-01T00:00:00.000Z")
END_MS = iso_to_ms("2025-10-31T00:00:00.000Z")  # every generated timestamp is at or before this
DAY_MS = 86_400_000
TIE_BLOCK = 50  # in every 50 iids, iids 10..14 share one exact updated_at (tie-break tests)
TIE_SLOTS = range(10, 15)

# Global id layout: (project id, kind) → base; an entity's id is base + iid.
GID_BASES: dict[tuple[int, Kind], int] = {
    (1, "issue"): 1_000_000,
    (1, "mr"): 3_000_000,
    (2, "issue"): 5_000_000,
    (2, "mr"): 6_000_000,
}

# fmt: off
_FIRST = ["Ada", "Brian", "Chen", "Dana", "Emil", "Fatima", "Goran", "Hana", "Ivan", "Julia", "Kofi",
          "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa"]
_LAST = ["Lovelace", "Kernighan", "Wei", "Scott", "Novak", "Haddad", "Petrov", "Sato", "Moreau", "Mensah",
         "Berg", "Garcia", "Raman", "Silva"]
LABEL_NAMES = ["bug", "feature", "documentation", "priority::high", "priority::low", "backend", "frontend",
               "needs-review", "security", "performance", "ux", "tech-debt"]
_LABEL_COLORS = ["#d9534f", "#428bca", "#5cb85c", "#ff0000", "#69d100", "#6699cc", "#ad8d43", "#f0ad4e",
                 "#cc0033", "#8e44ad", "#009966", "#7f8c8d"]
# fmt: on
USER_COUNT = 30  # user 1 is the token owner
GHOST_USER_ID = 99  # GitLab's "Ghost User": deleted users' notes and events are moved to it


def sha1_hex(text: str) -> str:
    """Stable 40-hex ids (discussion ids, commit shas, line codes) derived from the seed."""
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def rng_for(seed: int, *parts: object) -> random.Random:
    """A generator private to one (seed, project, kind, iid, purpose): lazy data stays stable."""
    return random.Random(":".join([str(seed), *map(str, parts)]))


@dataclass(frozen=True, slots=True)
class ProjectInfo:
    id: int
    path_with_namespace: str
    name: str
    description: str
    namespace_id: int
    namespace_parent_id: int | None
    created_ms: int

    @property
    def path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[1]

    @property
    def namespace_path(self) -> str:
        return self.path_with_namespace.rsplit("/", 1)[0]


@dataclass(slots=True)
class OrderedView:
    """Visible iids in one list order, with ascending ``keys`` for bisecting a date range."""

    iids: list[int]
    keys: list[int]
    negated: bool  # keys are -timestamp (descending order)

    def date_range(self, after_ms: int | None, before_ms: int | None) -> tuple[int, int]:
        """Slice bounds of items with after <= value <= before (both inclusive, like GitLab)."""
        lo, hi = 0, len(self.keys)
        if self.negated:
            if after_ms is not None:
                hi = bisect.bisect_right(self.keys, -after_ms)
            if before_ms is not None:
                lo = bisect.bisect_left(self.keys, -before_ms)
        else:
            if after_ms is not None:
                lo = bisect.bisect_left(self.keys, after_ms)
            if before_ms is not None:
                hi = bisect.bisect_right(self.keys, before_ms)
        return lo, max(lo, hi)


@dataclass(slots=True)
class Overlay:
    """What mutations changed on one entity, on top of its generated truth."""

    closure_set: bool = False  # closed_at/closed_by below replace the generated ones
    closed_at: int | None = None
    closed_by: int | None = None
    labels_added: list[str] = field(default_factory=list)
    discussions: list[dict[str, Any]] = field(default_factory=list)
    deleted_notes: set[int] = field(default_factory=set)  # note ids removed (generated or added)
    state_events: list[dict[str, Any]] = field(default_factory=list)
    label_events: list[dict[str, Any]] = field(default_factory=list)


@dataclass(slots=True)
class EntityTable:
    """Core columns of one project's issues or MRs, indexed by iid (index 0 unused)."""

    project_id: int
    kind: Kind
    gid_base: int
    created: list[int]
    base_updated: list[int]  # as generated; lazy data (notes, events) is derived from this
    updated: list[int]  # current, after mutations
    state: list[str]  # current, after mutations
    base_state: list[str]  # as generated
    seeded: int = 0  # entities generated from the seed (later ones were created by mutations)
    hidden: set[int] = field(default_factory=set)
    overlays: dict[int, Overlay] = field(default_factory=dict)
    _views: dict[tuple[str, str], OrderedView] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.created) - 1

    def gid(self, iid: int) -> int:
        return self.gid_base + iid

    def visible(self, iid: int) -> bool:
        return 1 <= iid <= self.count and iid not in self.hidden

    def append(self, at_ms: int, state: str) -> int:
        """A new entity created at ``at_ms`` (created = updated); returns its iid."""
        for column in (self.created, self.base_updated, self.updated):
            column.append(at_ms)
        self.state.append(state)
        self.base_state.append(state)
        self.invalidate()
        return self.count

    def invalidate(self) -> None:
        """Forget cached orders: called after any mutation of timestamps, state or visibility."""
        self._views.clear()

    def view(self, order_by: str, sort: str) -> OrderedView:
        """Visible iids ordered by ``order_by`` then ``id DESC`` (GitLab's tie-break, even for asc)."""
        cached = self._views.get((order_by, sort))
        if cached is not None:
            return cached
        column = self.created if order_by == "created_at" else self.updated
        iids = [i for i in range(1, self.count + 1) if i not in self.hidden]
        if sort == "asc":
            iids.sort(key=lambda i: (column[i], -i))
            view = OrderedView(iids, [column[i] for i in iids], negated=False)
        else:
            iids.sort(key=lambda i: (column[i], i), reverse=True)
            view = OrderedView(iids, [-column[i] for i in iids], negated=True)
        self._views[(order_by, sort)] = view
        return view


def build_table(seed: int, project_id: int, kind: Kind, count: int) -> EntityTable:
    """Creation times rise with iid (as on GitLab); update times follow; some tie exactly."""
    rng = rng_for(seed, project_id, kind, "core")
    span = (END_MS - 150 * DAY_MS) - START_MS
    step = span / max(count, 1)
    created = [0] * (count + 1)
    updated = [0] * (count + 1)
    state = [""] * (count + 1)
    for iid in range(1, count + 1):
        c = START_MS + int((iid - 1) * step + rng.random() * step * 0.9)
        roll = rng.random()
        delta = 0 if roll < 0.05 else int(rng.random() ** 3 * 150 * DAY_MS) + rng.randrange(1000)
        created[iid] = c
        updated[iid] = min(c + delta, END_MS)
        state[iid] = _initial_state(kind, rng.random())
    for block in range(0, count + 1, TIE_BLOCK):
        members = [b for b in (block + s for s in TIE_SLOTS) if 1 <= b <= count]
        if len(members) > 1:
            shared = min(max(created[m] for m in members) + 3_600_000, END_MS)
            for m in members:
                updated[m] = shared
    return EntityTable(
        project_id, kind, GID_BASES[(project_id, kind)], created, list(updated), updated, state, list(state),
        seeded=count,
    )


def _initial_state(kind: Kind, roll: float) -> str:
    if kind == "issue":
        return "closed" if roll < 0.4 else "opened"
    if roll < 0.5:
        return "merged"
    return "closed" if roll < 0.65 else "opened"


class Dataset:
    """Projects, users, labels, milestones and entity tables for one seed; URLs use ``base_url``."""

    def __init__(self, config: SimConfig, base_url: str) -> None:
        self.config = config
        self.seed = config.seed
        self.base_url = base_url.rstrip("/")
        self.projects: dict[int, ProjectInfo] = {
            1: ProjectInfo(
                1, "group/project", "project", "The big seeded project.", 10, None, START_MS - 30 * DAY_MS
            ),
            2: ProjectInfo(
                2,
                "group/sub/other",
                "other",
                "A small project in a subgroup.",
                11,
                10,
                START_MS - 20 * DAY_MS,
            ),
        }
        self.moved_paths: dict[str, int] = {"group/old-project": 1}
        sizes: dict[tuple[int, Kind], int] = {
            (1, "issue"): config.issues,
            (1, "mr"): config.mrs,
            (2, "issue"): config.other_issues,
            (2, "mr"): config.other_mrs,
        }
        self.tables: dict[tuple[int, Kind], EntityTable] = {
            key: build_table(config.seed, key[0], key[1], n) for key, n in sizes.items()
        }
        self.settings: dict[int, ProjectSettings] = {pid: ProjectSettings() for pid in self.projects}
        self.users: list[dict[str, Any]] = [self._user(i) for i in range(1, USER_COUNT + 1)]
        self.ghost = {
            "id": GHOST_USER_ID,
            "username": "ghost",
            "name": "Ghost User",
            "state": "active",
            "avatar_url": "https://www.gravatar.com/avatar/ghost?s=80&d=identicon",
            "web_url": f"{self.base_url}/ghost",
        }
        self.labels: dict[int, list[dict[str, Any]]] = {pid: self._labels(pid) for pid in self.projects}
        self.milestones: dict[int, list[dict[str, Any]]] = {
            pid: self._milestones(pid) for pid in self.projects
        }
        self.plan_cache: dict[tuple[int, Kind, int], Any] = {}  # notes.note_plan's memo

    def table(self, project_id: int, kind: Kind) -> EntityTable:
        return self.tables[(project_id, kind)]

    def find_project(self, ref: str) -> ProjectInfo | None:
        """By numeric id if all digits, else by full path (case-insensitive), as GitLab does."""
        if ref.isdigit():
            return self.projects.get(int(ref))
        lowered = ref.lower()
        for project in self.projects.values():
            if project.path_with_namespace.lower() == lowered:
                return project
        return None

    def user(self, user_id: int) -> dict[str, Any]:
        return self.ghost if user_id == GHOST_USER_ID else self.users[user_id - 1]

    def web_url(self, project: ProjectInfo, kind: Kind | None = None, iid: int | None = None) -> str:
        url = f"{self.base_url}/{project.path_with_namespace}"
        if kind is None:
            return url
        return f"{url}/-/{'issues' if kind == 'issue' else 'merge_requests'}/{iid}"

    def _user(self, user_id: int) -> dict[str, Any]:
        if user_id == 1:
            username, name = "sim-bot", "Simulator Bot"
        else:
            first, last = _FIRST[(user_id * 7) % len(_FIRST)], _LAST[(user_id * 11) % len(_LAST)]
            username, name = f"{first.lower()}.{last.lower()}{user_id}", f"{first} {last}"
        avatar = hashlib.md5(username.encode(), usedforsecurity=False).hexdigest()
        return {
            "id": user_id,
            "username": username,
            "name": name,
            "state": "active",
            "avatar_url": f"https://www.gravatar.com/avatar/{avatar}?s=80&d=identicon",
            "web_url": f"{self.base_url}/{username}",
        }

    def _labels(self, project_id: int) -> list[dict[str, Any]]:
        return [
            {
                "id": project_id * 100 + k,
                "name": name,
                "color": _LABEL_COLORS[k],
                "description": f"Issues about {name}." if k % 3 else None,
            }
            for k, name in enumerate(LABEL_NAMES)
        ]

    def _milestones(self, project_id: int) -> list[dict[str, Any]]:
        project = self.projects[project_id]
        out = []
        for k in range(1, 7):
            start = START_MS + (k - 1) * 100 * DAY_MS
            due = start + 90 * DAY_MS
            out.append(
                {
                    "id": project_id * 1000 + k,
                    "iid": k,
                    "project_id": project_id,
                    "title": f"v1.{k - 1}",
                    "description": f"Release 1.{k - 1} of {project.name}.",
                    "state": "closed" if due < END_MS - 60 * DAY_MS else "active",
                    "created_at": ms_to_iso(start - 10 * DAY_MS),
                    "updated_at": ms_to_iso(start - 5 * DAY_MS),
                    "due_date": ms_to_iso(due)[:10],
                    "start_date": ms_to_iso(start)[:10],
                    "expired": due < END_MS,
                    "web_url": f"{self.web_url(project)}/-/milestones/{k}",
                }
            )
        return out
