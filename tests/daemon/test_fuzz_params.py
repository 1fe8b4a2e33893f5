"""Property: any JSON as params, to any method, gets a proper result or error — never a hang or crash."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lore_daemon.errors import CODES

from .support import RawDaemon

METHODS = [
    "lore/preflight", "lore/syncSurgical", "lore/syncRuns", "lore/sync", "lore/status", "lore/robotDocs",
    "lore/get", "lore/list", "lore/search",
]
# Real field names mixed with noise, so some examples get past "unknown field" into deeper checks.
FIELD_NAMES = [
    "project", "issues", "mrs", "issueUrls", "mrUrls", "refs", "dryRun", "noEmbed", "projects",
    "limit", "runId", "status", "workDoneToken",
    "ref", "url", "kind", "iid", "include", "maxAgeMs", "offline", "state", "labels", "author", "assignee",
    "milestone", "updatedAfter", "sort", "order", "cursor", "query", "mode", "sourceTypes",
]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=24)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
keys = st.sampled_from(FIELD_NAMES) | st.text(max_size=12)
params_strategy = json_values | st.dictionaries(keys, json_values, max_size=5)


def _assert_proper_answer(response: dict[str, Any]) -> None:
    if "result" in response:
        return
    error = response["error"]
    data = error["data"]
    assert data["code"] in CODES, data
    assert error["code"] == CODES[data["code"]].rpc_code
    assert isinstance(data["message"], str) and data["message"]
    assert "traceback" not in repr(data).lower()


@pytest.mark.parametrize("method", METHODS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=params_strategy)
def test_random_params_always_get_a_proper_answer(
    shared_raw_daemon: RawDaemon, method: str, params: Any
) -> None:
    response = shared_raw_daemon.request(method, params, timeout=15)
    _assert_proper_answer(response)
    assert shared_raw_daemon.proc.poll() is None


def test_the_daemon_is_still_healthy_after_the_fuzzing(shared_raw_daemon: RawDaemon) -> None:
    assert shared_raw_daemon.request("lore/syncRuns", {"limit": 1})["result"] == {"runs": []}
    assert "Traceback" not in shared_raw_daemon.log_text()
