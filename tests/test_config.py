"""Configuration: lookup, validation errors with stable codes, overrides, and the token never leaking."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from lore_daemon.config import Config, Secret, config_summary, load_config, read_token
from lore_daemon.errors import ConfigError

TOKEN = "glpat-SuperSecret0123456789"
VALID = """
[gitlab]
base_url = "https://gitlab.example.com/gitlab/"
token_env = "MY_GL_TOKEN"

[[projects]]
path = "group/project"

[[projects]]
path = "group/sub/other"

[storage]
db_path = "data/lore.db"

[sync]
primary_concurrency = 4
lock_timeout_ms = 1000
stale_lock_ms = 20000

[embedding]
provider = "none"
"""
MINIMAL = '[gitlab]\nbase_url = "https://gl.test"\n'


def _file(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path / "home"), "GITLAB_TOKEN": TOKEN, "MY_GL_TOKEN": TOKEN, **extra}


def _error(path: Path | None, env: dict[str, str], **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        load_config(path, env=env, **kwargs)
    return err.value


def test_valid_file(tmp_path: Path) -> None:
    path = _file(tmp_path, VALID)
    cfg = load_config(path, env=_env(tmp_path))
    assert cfg.gitlab.base_url == "https://gitlab.example.com/gitlab"  # path prefix kept, slash dropped
    assert cfg.gitlab.token_env == "MY_GL_TOKEN"
    assert cfg.project_paths == ["group/project", "group/sub/other"]
    assert cfg.sync.primary_concurrency == 4 and cfg.sync.lock_timeout_ms == 1000
    assert cfg.sync.stale_lock_ms == 20000
    assert cfg.embedding.provider == "none"
    assert cfg.config_path == path
    assert cfg.db_path == tmp_path / "data" / "lore.db"  # relative to the config file


def test_defaults(tmp_path: Path) -> None:
    cfg = load_config(_file(tmp_path, MINIMAL), env=_env(tmp_path))
    assert cfg.gitlab.token_env == "GITLAB_TOKEN"
    assert cfg.projects == []
    assert cfg.sync.primary_concurrency == 8
    assert (cfg.sync.lock_timeout_ms, cfg.sync.stale_lock_ms) == (30000, 60000)
    assert cfg.db_path == tmp_path / "home" / ".local" / "share" / "lore" / "lore.db"


def test_lookup_order(tmp_path: Path) -> None:
    xdg = _file(tmp_path / "xdg" / "lore", MINIMAL.replace("gl.test", "xdg.test"))
    home = _file(tmp_path / "home" / ".config" / "lore", MINIMAL.replace("gl.test", "home.test"))
    named = _file(tmp_path / "elsewhere", MINIMAL.replace("gl.test", "named.test"), "my.toml")
    explicit = _file(tmp_path, MINIMAL.replace("gl.test", "explicit.test"), "explicit.toml")

    env = _env(tmp_path)
    assert load_config(env=env).config_path == home
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    assert load_config(env=env).gitlab.base_url == "https://xdg.test"
    assert load_config(env=env).config_path == xdg
    env["LORE_CONFIG_PATH"] = str(named)
    assert load_config(env=env).gitlab.base_url == "https://named.test"
    assert load_config(explicit, env=env).gitlab.base_url == "https://explicit.test"
    env["XDG_CONFIG_HOME"] = "relative/dir"  # not absolute: ignored, per the XDG spec
    del env["LORE_CONFIG_PATH"]
    assert load_config(env=env).config_path == home


def test_lore_db_path_overrides_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, VALID)
    cfg = load_config(path, env=_env(tmp_path, LORE_DB_PATH="~/custom/x.db"))
    assert cfg.db_path == tmp_path / "home" / "custom" / "x.db"
    cfg = load_config(path, env=_env(tmp_path, LORE_DB_PATH=str(tmp_path / "abs.db")))
    assert cfg.db_path == tmp_path / "abs.db"
    # an explicit per-session override beats the environment
    cfg = load_config(
        path, env=_env(tmp_path, LORE_DB_PATH="/ignored.db"),
        overrides={"storage": {"db_path": str(tmp_path / "session.db")}},
    )
    assert cfg.db_path == tmp_path / "session.db"


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    err = _error(missing, _env(tmp_path))
    assert err.code == "CONFIG_NOT_FOUND"
    assert err.details["file"] == str(missing)
    assert "LORE_CONFIG_PATH" in err.suggestion and "[gitlab]" in err.suggestion
    default = _error(None, _env(tmp_path))
    assert default.details["file"] == str(tmp_path / "home" / ".config" / "lore" / "config.toml")


def test_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = _file(tmp_path, '[gitlab]\nbase_url = = "x"\n')
    err = _error(path, _env(tmp_path))
    assert err.code == "CONFIG_INVALID"
    assert err.details["file"] == str(path)
    assert (err.details["line"], err.details["column"]) == (2, 12)


def test_unknown_key_suggests_the_closest(tmp_path: Path) -> None:
    path = _file(tmp_path, MINIMAL + "[sync]\nlock_timout_ms = 5\n")
    err = _error(path, _env(tmp_path))
    assert err.code == "CONFIG_UNKNOWN_KEY"
    assert err.details == {
        "file": str(path), "key": "sync.lock_timout_ms", "source": str(path),
        "closest": "sync.lock_timeout_ms",
    }
    assert "sync.lock_timeout_ms" in err.suggestion
    nested = _error(_file(tmp_path, MINIMAL + '[[projects]]\npath = "a/b"\nbranch = "x"\n'), _env(tmp_path))
    assert nested.code == "CONFIG_UNKNOWN_KEY" and nested.details["key"] == "projects[0].branch"
    top = _error(_file(tmp_path, MINIMAL + "[storag]\ndb_path = 'x'\n"), _env(tmp_path))
    assert top.details["key"] == "storag" and "`storage`" in top.suggestion


def test_token_in_the_file_is_an_unknown_key_and_not_echoed(tmp_path: Path) -> None:
    path = _file(tmp_path, MINIMAL + f'token = "{TOKEN}"\n')
    err = _error(path, _env(tmp_path))
    assert err.code == "CONFIG_UNKNOWN_KEY" and err.details["key"] == "gitlab.token"
    assert "token_env" in err.suggestion
    assert TOKEN not in repr(err) + str(err) + err.suggestion + str(err.details)


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ("[sync]\nprimary_concurrency = 'eight'\n", "sync.primary_concurrency", "int"),
        ("[sync]\nprimary_concurrency = 0\n", "sync.primary_concurrency", ">= 1"),
        ("[sync]\nprimary_concurrency = 65\n", "sync.primary_concurrency", "<= 64"),
        ("[sync]\nlock_timeout_ms = true\n", "sync.lock_timeout_ms", "int"),
        ("[embedding]\nprovider = 'cohere'\n", "embedding.provider", '"local", "ollama", "openai", "none"'),
        ("[[projects]]\npath = 'no-namespace'\n", "projects[0].path", "group/project"),
        ("[storage]\ndb_path = ''\n", "storage.db_path", "length"),
        ("projects = 'a/b'\n", "projects", "array"),
    ],
)
def test_wrong_type_or_value(tmp_path: Path, extra: str, key: str, expected: str) -> None:
    text = MINIMAL + extra if extra.startswith("[") else extra + MINIMAL
    path = _file(tmp_path, text)
    err = _error(path, _env(tmp_path))
    assert err.code == "CONFIG_INVALID"
    assert err.details["key"] == key and err.details["file"] == str(path)
    assert expected in err.details["expected"]
    assert f"`{key}`" in err.message


def test_missing_required_key(tmp_path: Path) -> None:
    err = _error(_file(tmp_path, "[gitlab]\ntoken_env = 'X'\n"), _env(tmp_path))
    assert err.code == "CONFIG_INVALID" and err.details["key"] == "gitlab.base_url"
    err = _error(_file(tmp_path, "[[projects]]\npath = 'a/b'\n"), _env(tmp_path))
    assert err.details["key"] == "gitlab"


@pytest.mark.parametrize(
    "url",
    ["gitlab.example.com", "ftp://gitlab.example.com", "https://", "https://user:pw@gl.test",
     "https://gl.test/?x=1", "https://[::1"],
)
def test_base_url_must_be_http(tmp_path: Path, url: str) -> None:
    err = _error(_file(tmp_path, f'[gitlab]\nbase_url = "{url}"\n'), _env(tmp_path))
    assert err.code == "CONFIG_INVALID" and err.details["key"] == "gitlab.base_url"
    assert "pw" not in str(err)


def test_token_env_that_is_a_token_is_refused_without_echo(tmp_path: Path) -> None:
    for value in (TOKEN, "aB3dEfGh1JkLmN0pQrStUv"):
        path = _file(tmp_path, MINIMAL + f'token_env = "{value}"\n')
        err = _error(path, {"HOME": str(tmp_path)})
        assert err.code == "CONFIG_INVALID" and err.details["key"] == "gitlab.token_env"
        assert value not in str(err) + err.suggestion + str(err.details)


def test_duplicate_project(tmp_path: Path) -> None:
    text = MINIMAL + "[[projects]]\npath = 'a/b'\n[[projects]]\npath = 'a/b'\n"
    err = _error(_file(tmp_path, text), _env(tmp_path))
    assert err.code == "CONFIG_INVALID" and err.details["key"] == "projects[1].path"


def test_token(tmp_path: Path) -> None:
    path = _file(tmp_path, VALID)
    cfg = load_config(path, env=_env(tmp_path))
    secret = read_token(cfg, {"MY_GL_TOKEN": f"  {TOKEN}\n"})
    assert isinstance(secret, Secret) and secret.reveal() == TOKEN
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('***')"
    for env in ({}, {"MY_GL_TOKEN": ""}, {"MY_GL_TOKEN": "  "}):
        with pytest.raises(ConfigError) as err:
            read_token(cfg, env)
        assert err.value.code == "TOKEN_NOT_SET"
        assert "MY_GL_TOKEN" in err.value.message and err.value.details["env"] == "MY_GL_TOKEN"
    unset = _error(path, {"HOME": str(tmp_path)})
    assert unset.code == "TOKEN_NOT_SET" and "MY_GL_TOKEN" in unset.suggestion
    assert load_config(path, env={"HOME": str(tmp_path)}, require_token=False).config_path == path


def test_overrides_merge_and_are_validated_like_the_file(tmp_path: Path) -> None:
    path = _file(tmp_path, VALID)
    cfg = load_config(
        path, env=_env(tmp_path),
        overrides={"sync": {"primary_concurrency": 2, "stale_lock_ms": None}, "projects": [{"path": "x/y"}]},
    )
    assert cfg.sync.primary_concurrency == 2
    assert cfg.sync.lock_timeout_ms == 1000 and cfg.sync.stale_lock_ms == 20000  # null = no override
    assert cfg.project_paths == ["x/y"]  # lists replace

    bad = _error(path, _env(tmp_path), overrides={"sync": {"primary_concurrency": "many"}})
    assert bad.code == "CONFIG_INVALID" and bad.details["key"] == "sync.primary_concurrency"
    assert bad.details["source"] == "initializationOptions"
    typo = _error(path, _env(tmp_path), overrides={"sync": {"lockTimeoutMs": 5}})
    assert typo.code == "CONFIG_UNKNOWN_KEY" and typo.details["source"] == "initializationOptions"
    assert typo.details["closest"] == "sync.lock_timeout_ms"
    url = _error(path, _env(tmp_path), overrides={"gitlab": {"base_url": "file:///etc"}})
    assert url.code == "CONFIG_INVALID" and url.details["key"] == "gitlab.base_url"
    assert url.details["source"] == "initializationOptions"
    not_object = _error(path, _env(tmp_path), overrides=["x"])  # type: ignore[arg-type]
    assert not_object.code == "CONFIG_INVALID"


def test_overrides_alone_when_no_default_file(tmp_path: Path) -> None:
    env = _env(tmp_path)
    cfg = load_config(env=env, overrides={"gitlab": {"base_url": "http://127.0.0.1:9999"}})
    assert cfg.config_path is None and cfg.gitlab.base_url == "http://127.0.0.1:9999"
    assert _error(None, env, overrides={"sync": {"primary_concurrency": 2}}).code == "CONFIG_NOT_FOUND"
    explicit = tmp_path / "missing.toml"
    err = _error(explicit, env, overrides={"gitlab": {"base_url": "http://127.0.0.1:9999"}})
    assert err.code == "CONFIG_NOT_FOUND"


def test_summary_has_no_secret(tmp_path: Path) -> None:
    cfg = load_config(_file(tmp_path, VALID), env=_env(tmp_path))
    summary = config_summary(cfg)
    assert summary == {
        "configPath": str(tmp_path / "config.toml"),
        "gitlab": {"baseUrl": "https://gitlab.example.com/gitlab", "tokenEnv": "MY_GL_TOKEN"},
        "projects": ["group/project", "group/sub/other"],
        "dbPath": str(tmp_path / "data" / "lore.db"),
        "sync": {
            "primaryConcurrency": 4, "lockTimeoutMs": 1000, "staleLockMs": 20000
        },
        "embedding": {
            "provider": "none", "model": None, "baseUrl": None, "apiKeyEnv": None, "dimensions": None,
            "batchSize": 8, "chunkChars": 800, "chunkOverlapChars": 120, "threads": 0, "timeoutMs": 30000,
            "queryPrefix": "", "documentPrefix": "",
        },
    }


def test_token_never_leaks(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    env = _env(tmp_path)
    path = _file(tmp_path, VALID)
    cfg = load_config(path, env=env)
    secret = read_token(cfg, env)
    texts = [repr(cfg), str(cfg), repr(secret), str(config_summary(cfg)), str(cfg.gitlab)]
    failures = [
        _error(_file(tmp_path, VALID + "\n[sync]\nx = 1\n", "dup.toml"), env),
        _error(_file(tmp_path, VALID.replace("4", "'four'"), "bad.toml"), env),
        _error(tmp_path / "missing.toml", env),
        _error(path, env, overrides={"gitlab": {"base_url": f"https://u:{TOKEN}@gl.test"}}),
    ]
    with pytest.raises(ConfigError) as unset:
        read_token(cfg, {})
    failures.append(unset.value)
    for err in failures:
        texts += [str(err), repr(err), err.message, err.suggestion, str(err.details)]
    logging.getLogger("lore_daemon").debug("config %r token %s", cfg, secret)
    texts += [record.getMessage() for record in caplog.records]
    assert any("configuration loaded" in record.getMessage() for record in caplog.records)
    assert all(TOKEN not in text for text in texts)
    assert isinstance(cfg, Config) and not hasattr(cfg, "token")
