"""How configuration problems become ``ConfigError``s that name the file, the dotted key and the fix.

msgspec reports ``Expected `int`, got `str` - at `$.sync.lock_timeout_ms```; users need
``sync.lock_timeout_ms`` and, for a typo, the key they probably meant. Messages never echo a
value from the file, so a token pasted in the wrong place cannot leak through an error.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import msgspec
import msgspec.inspect as mi

from lore_daemon.errors import ConfigError

OVERRIDES_SOURCE = "initializationOptions"
EnvVarName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
MINIMAL_EXAMPLE = """[gitlab]
base_url = "https://gitlab.example.com"
token_env = "GITLAB_TOKEN"

[[projects]]
path = "group/project"
"""


def config_error(code: str, message: str, suggestion: str, file: Path | None, **details: Any) -> ConfigError:
    return ConfigError(message, code, suggestion, details={"file": str(file) if file else None, **details})


def not_found(file: Path) -> ConfigError:
    return config_error(
        "CONFIG_NOT_FOUND",
        f"No configuration file at {file}.",
        f"Create {file} or set LORE_CONFIG_PATH to your config file. A minimal file:\n{MINIMAL_EXAMPLE}",
        file,
    )


def _dotted(json_path: str) -> str:
    """msgspec's ``$.sync.lock_timeout_ms`` / ``$.projects[0].path`` -> ``sync.lock_timeout_ms``."""
    return json_path.removeprefix("$").removeprefix(".")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def find_unknown_key(value: Any, typ: mi.Type, prefix: str = "") -> tuple[str, str, list[str]] | None:
    """First key not in the schema: (dotted key, the bad name, the names allowed beside it)."""
    if isinstance(typ, mi.UnionType):
        for member in typ.types:
            found = find_unknown_key(value, member, prefix)
            if found:
                return found
    elif isinstance(typ, mi.StructType) and isinstance(value, dict):
        fields = {f.encode_name: f for f in typ.fields}
        for key in value:
            if key not in fields:
                return _join(prefix, str(key)), str(key), list(fields)
        for key, field in fields.items():
            if key in value:
                found = find_unknown_key(value[key], field.type, _join(prefix, key))
                if found:
                    return found
    elif isinstance(typ, mi.ListType) and isinstance(value, list):
        for index, item in enumerate(value):
            found = find_unknown_key(item, typ.item_type, f"{prefix}[{index}]")
            if found:
                return found
    return None


def unknown_key_error(
    dotted: str, name: str, known: list[str], file: Path | None, source: str
) -> ConfigError:
    parent = dotted[: -len(name)].rstrip(".")
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if parent == "gitlab" and name in ("token", "private_token"):
        hint = "Never put the token in the config: export it and name the variable in gitlab.token_env."
    elif close:
        hint = f"Did you mean `{_join(parent, close[0])}`?"
    else:
        hint = f"Known keys{' in [' + parent + ']' if parent else ''}: {', '.join(known)}."
    return config_error(
        "CONFIG_UNKNOWN_KEY", f"Unknown configuration key `{dotted}` in {source}.", hint, file,
        key=dotted, source=source, closest=_join(parent, close[0]) if close else None,
    )


FRIENDLY_EXPECTED = {
    "gitlab.token_env": "the NAME of an environment variable (letters, digits, underscore), not the token",
    "embedding.provider": 'one of: "local", "ollama", "openai", "none"',
    "embedding.api_key_env": "the NAME of an environment variable holding the key, not the key",
    "projects[].path": "a full project path such as group/project",
}

_VALIDATION = re.compile(r"^(?P<reason>.*?)(?: - at `(?P<path>\$[^`]*)`)?$", re.DOTALL)
_MISSING = re.compile(r"^Object missing required field `(?P<field>[^`]+)`$")


def validation_error(
    exc: msgspec.ValidationError, file: Path | None, overrides: Mapping[str, Any]
) -> ConfigError:
    match = _VALIDATION.match(str(exc))
    reason = match.group("reason") if match else str(exc)
    key = _dotted(match.group("path") or "$") if match else ""
    source = OVERRIDES_SOURCE if file is None else str(file)
    missing = _MISSING.match(reason)
    if missing:
        key = _join(key, missing.group("field"))
        return config_error(
            "CONFIG_INVALID", f"Missing required key `{key}` in {source}.",
            f"Add it, for example:\n{MINIMAL_EXAMPLE}", file, key=key, expected="a value", source=source,
        )
    generic = re.sub(r"\[\d+\]", "[]", key)
    expected = FRIENDLY_EXPECTED.get(generic, reason.replace("`", "").replace("Expected ", ""))
    if has_key(overrides, key):
        source = OVERRIDES_SOURCE
    return config_error(
        "CONFIG_INVALID", f"Invalid value for `{key}` in {source}: expected {expected}.",
        f"Fix `{key}` in {source}.", file, key=key, expected=expected, source=source,
    )


def has_key(tree: Mapping[str, Any], dotted: str) -> bool:
    """Whether ``tree`` sets the dotted key (a list it sets replaces the file's list whole)."""
    node: Any = tree
    for part in re.findall(r"[^.\[\]]+", dotted):
        if isinstance(node, list):
            return True
        if not isinstance(node, Mapping) or part not in node:
            return False
        node = node[part]
    return bool(dotted) and node is not None


def looks_like_token(name: str) -> bool:
    """A long mixed-case alphanumeric "name" is far more likely a pasted token than a variable."""
    kinds = (str.islower, str.isupper, str.isdigit)
    return len(name) >= 20 and all(any(kind(c) for c in name) for kind in kinds)


def checked_url(raw: str, key: str, example: str, file: Path | None, overrides: Mapping[str, Any]) -> str:
    """An http(s) URL without credentials, query or fragment, trailing ``/`` dropped; else CONFIG_INVALID."""
    try:
        url = urlsplit(raw.strip())
        valid_netloc = bool(url.hostname) and (url.port or 0) >= 0
    except ValueError:  # e.g. an unclosed IPv6 bracket or a non-numeric port
        url, valid_netloc = urlsplit(""), False
    problem = None
    if url.scheme not in ("http", "https") or not valid_netloc:
        problem = f"an http:// or https:// URL such as {example}"
    elif url.username or url.password:
        problem = "a URL without credentials (secrets go in environment variables)"
    elif url.query or url.fragment:
        problem = "a URL without query string or fragment"
    if problem:
        from_overrides = file is None or has_key(overrides, key)
        source = OVERRIDES_SOURCE if from_overrides else str(file)
        raise config_error(
            "CONFIG_INVALID", f"Invalid value for `{key}` in {source}: expected {problem}.",
            f"Fix `{key}` in {source}.", file, key=key, expected=problem, source=source,
        )
    return url.geturl().rstrip("/")
