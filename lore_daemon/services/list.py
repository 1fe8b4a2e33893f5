"""``lore/list``: issues and MRs of the mirror by filters, in keyset pages (SPEC §12).

Local only (configuration and database, never the token or the network). ``limit`` is 1-200
(more is ``INVALID_PARAMS``, never a silent cap); a page that does not hold every match carries
``nextCursor``. The paging rules are in ``store/read_list.py``.
"""

from __future__ import annotations

from lore_daemon.protocol_read import ListParams, ListResult
from lore_daemon.services.runtime import Runtime
from lore_daemon.services.spec import Call, MethodSpec
from lore_daemon.services.targets import LOCAL_READ_ERRORS
from lore_daemon.store.read_list import list_page


async def serve(runtime: Runtime, params: ListParams, call: Call) -> ListResult:
    runtime.config()  # a config problem is reported as one, before the database is opened
    db = await runtime.database()
    return await db.read(list_page, params)


SPEC = MethodSpec(
    name="lore/list",
    summary=(
        "Issues and MRs of the mirror by filters (project, kind, state, labels (all of), author, "
        "assignee, milestone, updatedAfter), sorted by updated or created, in pages of up to 200 "
        "with an opaque nextCursor that stays correct while syncs write. Local only."
    ),
    params_type=ListParams,
    result_type=ListResult,
    serve=serve,
    error_codes=LOCAL_READ_ERRORS,
)
