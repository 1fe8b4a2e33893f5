"""TOML configuration: lookup, validation with msgspec, env overrides, and the token as a Secret.

Every failure is a ``ConfigError`` with a stable code that names the file and the dotted key, so
an agent or an editor can show the fix instead of a traceback. The token itself never enters the
``Config``: only the NAME of its environment variable does, and ``read_token`` returns it wrapped
in ``Secret`` so an accidental log or repr prints ``Secret('***')``.
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec
import msgspec.inspect as mi

from lore_daemon.config_embedding import EmbeddingConfig, embedding_summary, resolve_embedding
from lore_daemon.config_errors import (
    FRIENDLY_EXPECTED,
    OVERRIDES_SOURCE,
    EnvVarName,
    checked_url,
    config_error,
    find_unknown_key,
    has_key,
    looks_like_token,
    not_found,
    unknown_key_error,
    validation_error,
)
from lore_daemon.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_DB_PATH = "~/.local/share/lore/lore.db"

ProjectPath = Annotated[str, msgspec.Meta(pattern=r"^[^/\s]+(/[^/\s]+)+$")]
Concurrency = Annotated[int, msgspec.Meta(ge=1, le=64)]


class GitLabConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    base_url: str
    token_env: EnvVarName = "GITLAB_TOKEN"


class ProjectConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: ProjectPath


class StorageConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    db_path: Annotated[str, msgspec.Meta(min_length=1)] = DEFAULT_DB_PATH


class SyncConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``primary_concurrency`` bounds in-flight GitLab requests for every run in the process."""

    primary_concurrency: Concurrency = 8
    lock_timeout_ms: Annotated[int, msgspec.Meta(ge=0, le=3_600_000)] = 30_000
    stale_lock_ms: Annotated[int, msgspec.Meta(ge=1_000, le=86_400_000)] = 60_000


class _ConfigFile(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly what a file (merged with overrides) may contain."""

    gitlab: GitLabConfig
    projects: list[ProjectConfig] = []
    storage: StorageConfig = msgspec.field(default_factory=StorageConfig)
    sync: SyncConfig = msgspec.field(default_factory=SyncConfig)
    embedding: EmbeddingConfig = msgspec.field(default_factory=EmbeddingConfig)


class Config(msgspec.Struct, frozen=True, kw_only=True):
    """The validated configuration plus what was resolved from the environment. No secrets."""

    gitlab: GitLabConfig
    projects: list[ProjectConfig]
    storage: StorageConfig
    sync: SyncConfig
    embedding: EmbeddingConfig
    config_path: Path | None
    db_path: Path

    @property
    def project_paths(self) -> list[str]:
        return [p.path for p in self.projects]


class Secret:
    """A value that must not leak: repr/str show ``Secret('***')``; ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(Secret)


# ------------------------------------------------------------------------------------------ lookup


def _home(env: Mapping[str, str]) -> Path:
    home = env.get("HOME")
    return Path(home) if home else Path.home()


def _expand(value: str, env: Mapping[str, str]) -> Path:
    if value == "~" or value.startswith("~/"):
        return _home(env) / value[2:]
    return Path(os.path.expanduser(value))


def config_file_path(
    path: str | Path | None = None, env: Mapping[str, str] | None = None
) -> tuple[Path, bool]:
    """The file to read and whether it was named explicitly (argument or $LORE_CONFIG_PATH)."""
    env = os.environ if env is None else env
    if path is not None:
        return _expand(str(path), env).absolute(), True
    if env.get("LORE_CONFIG_PATH"):
        return _expand(env["LORE_CONFIG_PATH"], env).absolute(), True
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else _home(env) / ".config"
    return base / "lore" / "config.toml", False


# ------------------------------------------------------------------------------------------ loading


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, col = (int(where.group(1)), int(where.group(2))) if where else (None, None)
        raise config_error(
            "CONFIG_INVALID", f"{file} is not valid TOML: {exc}.",
            f"Fix the syntax at line {line}, column {col}." if line else "Fix the TOML syntax.",
            file, line=line, column=col,
        ) from None
    except UnicodeDecodeError:
        raise config_error(
            "CONFIG_INVALID", f"{file} is not UTF-8 text.", "Save it as UTF-8.", file
        ) from None
    except OSError as exc:
        raise config_error(
            "CONFIG_INVALID", f"Cannot read {file}: {exc.strerror}.", "Check the file's permissions.", file
        ) from None


def _merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``over`` onto ``base``; tables merge, everything else replaces; null = no override."""
    out = dict(base)
    for key, value in over.items():
        if value is None:
            continue
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = dict(value) if isinstance(value, Mapping) else value
    return out


def _check_values(parsed: _ConfigFile, file: Path | None, overrides: Mapping[str, Any]) -> GitLabConfig:
    """Checks msgspec cannot express; returns the GitLab section with base_url normalised."""
    base_url = checked_url(
        parsed.gitlab.base_url, "gitlab.base_url", "https://gitlab.example.com", file, overrides
    )
    if looks_like_token(parsed.gitlab.token_env):
        raise config_error(
            "CONFIG_INVALID",
            "`gitlab.token_env` looks like a token, not an environment variable name (value not shown).",
            'Export the token, e.g. GITLAB_TOKEN=..., and set token_env = "GITLAB_TOKEN".',
            file, key="gitlab.token_env", expected=FRIENDLY_EXPECTED["gitlab.token_env"],
        )
    seen: set[str] = set()
    for index, project in enumerate(parsed.projects):
        if project.path in seen:
            raise config_error(
                "CONFIG_INVALID", f"Project `{project.path}` is listed twice (projects[{index}]).",
                "Remove the duplicate [[projects]] entry.", file, key=f"projects[{index}].path",
                expected="each project once",
            )
        seen.add(project.path)
    return msgspec.structs.replace(parsed.gitlab, base_url=base_url)


def _resolve_db_path(
    parsed: _ConfigFile, overrides: Mapping[str, Any], env: Mapping[str, str], file: Path | None
) -> Path:
    """initializationOptions > $LORE_DB_PATH > the file (relative to the file's directory)."""
    if has_key(overrides, "storage.db_path"):
        raw, base = parsed.storage.db_path, Path.cwd()
    elif env.get("LORE_DB_PATH"):
        raw, base = env["LORE_DB_PATH"], Path.cwd()
    else:
        raw, base = parsed.storage.db_path, (file.parent if file else Path.cwd())
    path = _expand(raw, env)
    return Path(os.path.normpath(path if path.is_absolute() else base / path))


def load_config(
    path: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    require_token: bool = True,
) -> Config:
    """Find, read, merge and validate the configuration; raise ``ConfigError`` on any problem.

    Lookup: ``path``, else $LORE_CONFIG_PATH, else $XDG_CONFIG_HOME/lore/config.toml, else
    ~/.config/lore/config.toml. ``overrides`` (LSP initializationOptions, TOML key names) merge over
    the file and get the same validation. When no file was named and the default one is missing,
    overrides that carry ``gitlab.base_url`` stand alone. ``require_token`` also checks that the
    token variable is set (its value is not kept).
    """
    env = os.environ if env is None else env
    overrides = {} if overrides is None else overrides
    if not isinstance(overrides, Mapping):
        raise config_error(
            "CONFIG_INVALID", f"{OVERRIDES_SOURCE} must be an object.", "Send a JSON object.", None,
            source=OVERRIDES_SOURCE,
        )
    file, explicit = config_file_path(path, env)
    used: Path | None = file
    if file.is_file():
        raw = _read_toml(file)
    elif file.exists():
        raise config_error("CONFIG_INVALID", f"{file} is not a regular file.", "Point to a TOML file.", file)
    elif not explicit and has_key(overrides, "gitlab.base_url"):
        raw, used = {}, None
    else:
        raise not_found(file)
    merged = _merge(raw, overrides)
    unknown = find_unknown_key(merged, mi.type_info(_ConfigFile))
    if unknown:
        from_overrides = used is None or has_key(overrides, unknown[0])
        source = OVERRIDES_SOURCE if from_overrides else str(used)
        raise unknown_key_error(*unknown, used, source)
    try:
        parsed = msgspec.convert(merged, _ConfigFile)
    except msgspec.ValidationError as exc:
        raise validation_error(exc, used, overrides) from None
    config = Config(
        gitlab=_check_values(parsed, used, overrides),
        projects=parsed.projects,
        storage=parsed.storage,
        sync=parsed.sync,
        embedding=resolve_embedding(parsed.embedding, used, overrides),
        config_path=used,
        db_path=_resolve_db_path(parsed, overrides, env, used),
    )
    if require_token:
        read_token(config, env)
    log.debug(
        "configuration loaded from %s: %d project(s), db %s",
        used or OVERRIDES_SOURCE, len(config.projects), config.db_path,
    )
    return config


def read_token(config: Config, env: Mapping[str, str] | None = None) -> Secret:
    """The GitLab token from the variable named by ``gitlab.token_env``; TOKEN_NOT_SET if unset/empty."""
    env = os.environ if env is None else env
    name = config.gitlab.token_env
    value = env.get(name, "").strip()
    if not value:
        raise ConfigError(
            f"The environment variable {name} (gitlab.token_env) is not set or empty.",
            "TOKEN_NOT_SET",
            f"Export a GitLab personal access token with read_api scope: export {name}=<token>.",
            details={"file": str(config.config_path) if config.config_path else None, "env": name},
        )
    return Secret(value)


def config_summary(config: Config) -> dict[str, Any]:
    """The configuration as ``lore/status`` shows it: camelCase, no secrets (only the token's env name)."""
    return {
        "configPath": str(config.config_path) if config.config_path else None,
        "gitlab": {"baseUrl": config.gitlab.base_url, "tokenEnv": config.gitlab.token_env},
        "projects": config.project_paths,
        "dbPath": str(config.db_path),
        "sync": {
            "primaryConcurrency": config.sync.primary_concurrency,
            "lockTimeoutMs": config.sync.lock_timeout_ms,
            "staleLockMs": config.sync.stale_lock_ms,
        },
        "embedding": embedding_summary(config.embedding),
    }
