"""Every error code has a deliberate bridge exit code, and every exit code used is documented."""

from __future__ import annotations

from lore_client.bridge import _EXIT_BY_CODE, exit_code_for_error
from lore_daemon.errors import CODES
from lore_daemon.protocol import BRIDGE_EXIT_CODES


def test_every_error_code_has_an_exit_code() -> None:
    assert set(_EXIT_BY_CODE) == set(CODES)


def test_every_exit_code_used_is_documented() -> None:
    assert {exit_code_for_error(code) for code in CODES} <= set(BRIDGE_EXIT_CODES)


def test_classes() -> None:
    assert exit_code_for_error("INVALID_TARGET") == 2
    assert exit_code_for_error("TOKEN_NOT_SET") == 3
    assert exit_code_for_error("GITLAB_AUTH_FAILED") == 4
    assert exit_code_for_error("PREFLIGHT_FAILED") == 5
    assert exit_code_for_error("GITLAB_UNAVAILABLE") == 6
    assert exit_code_for_error("LOCK_TIMEOUT") == 7
    assert exit_code_for_error("CANCELLED") == 130
