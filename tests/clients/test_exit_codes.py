"""Every error code has a deliberate bridge exit code, beside its meaning in ``errors.CODES``."""

from __future__ import annotations

from lore_client.bridge import exit_code_for_error
from lore_daemon.errors import CODES, EXIT_CLASSES
from lore_daemon.protocol import BRIDGE_EXIT_CODES


def test_every_error_code_exits_with_a_documented_class() -> None:
    assert {code: exit_code_for_error(code) for code in CODES} == {c: i.exit_code for c, i in CODES.items()}
    assert {info.exit_code for info in CODES.values()} <= set(EXIT_CLASSES)


def test_the_published_table_names_every_code_under_its_exit_code() -> None:
    for code, info in CODES.items():
        assert code in BRIDGE_EXIT_CODES[info.exit_code]
    assert exit_code_for_error(None) == exit_code_for_error("NO_SUCH_CODE") == 1


def test_classes() -> None:
    assert exit_code_for_error("INVALID_TARGET") == 2
    assert exit_code_for_error("TOKEN_NOT_SET") == 3
    assert exit_code_for_error("GITLAB_AUTH_FAILED") == 4
    assert exit_code_for_error("PREFLIGHT_FAILED") == 5
    assert exit_code_for_error("GITLAB_UNAVAILABLE") == 6
    assert exit_code_for_error("LOCK_TIMEOUT") == 7
    assert exit_code_for_error("CANCELLED") == 130
