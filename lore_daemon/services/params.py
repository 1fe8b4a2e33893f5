"""Validate raw JSON params against a method's params Struct."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

from lore_daemon.errors import InvalidParamsError

P = TypeVar("P", bound=msgspec.Struct)

_PATH = re.compile(r" - at `(\$[^`]*)`$")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")
_SUGGESTION = "Fix the params; lore/robotDocs gives the JSON Schema of every method's params."


def parse_params(method: str, raw: Any, params_type: type[P]) -> P:
    """``msgspec.convert`` with every failure as ``INVALID_PARAMS`` naming the JSON path.

    A request without ``params`` (or ``null``) means "all defaults"; unknown fields are rejected
    (the params Structs forbid them) so a typo is an error rather than an ignored option.
    """
    try:
        return msgspec.convert({} if raw is None else raw, params_type)
    except msgspec.ValidationError as exc:
        text = str(exc)
        match = _PATH.search(text)
        path = match.group(1) if match else "$"
        unknown = _UNKNOWN_FIELD.search(text)
        if unknown:
            path = f"{path}.{unknown.group(1)}"
        reason = _PATH.sub("", text).replace("`", "")
        raise InvalidParamsError(
            f"Invalid params for {method} at {path}: {reason}",
            "INVALID_PARAMS",
            _SUGGESTION,
            details={"method": method, "path": path, "reason": reason},
        ) from None
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidParamsError(
            f"Invalid params for {method}: {type(exc).__name__}",
            "INVALID_PARAMS",
            _SUGGESTION,
            details={"method": method, "path": "$"},
        ) from None
