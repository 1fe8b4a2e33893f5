"""``[embedding]``: every key read, defaulted per provider, validated with structured errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from lore_daemon.config import Config, config_summary, load_config
from lore_daemon.embedding_catalog import LOCAL_MODELS
from lore_daemon.errors import ConfigError

BASE = '[gitlab]\nbase_url = "https://gl.test"\n'


def _load(tmp_path: Path, table: str, overrides: dict[str, Any] | None = None) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(BASE + "[embedding]\n" + table)
    return load_config(path, env={"HOME": str(tmp_path)}, overrides=overrides, require_token=False)


def _error(tmp_path: Path, table: str) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, table)
    return err.value


def test_local_is_the_default_with_the_bundled_model(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "").embedding
    assert (cfg.provider, cfg.model) == ("local", "all-MiniLM-L6-v2")
    assert (cfg.base_url, cfg.dimensions, cfg.api_key_env) == (None, None, None)
    assert (cfg.batch_size, cfg.chunk_chars, cfg.chunk_overlap_chars) == (8, 800, 120)
    assert (cfg.threads, cfg.timeout_ms, cfg.query_prefix, cfg.document_prefix) == (0, 30000, "", "")
    assert "all-MiniLM-L6-v2" in LOCAL_MODELS


def test_remote_providers_get_their_defaults_and_keep_explicit_values(tmp_path: Path) -> None:
    ollama = _load(tmp_path, 'provider = "ollama"\n').embedding
    assert (ollama.model, ollama.base_url) == ("nomic-embed-text", "http://127.0.0.1:11434")
    assert ollama.batch_size == 16
    openai = _load(
        tmp_path,
        'provider = "openai"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1/"\napi_key_env = "EMB_KEY"\n'
        'dimensions = 256\nbatch_size = 4\nchunk_chars = 1000\nchunk_overlap_chars = 100\nthreads = 2\n'
        'timeout_ms = 500\nquery_prefix = "query: "\ndocument_prefix = "passage: "\n',
    ).embedding
    assert (openai.model, openai.base_url, openai.api_key_env, openai.dimensions) == (
        "m", "http://127.0.0.1:9/v1", "EMB_KEY", 256,
    )
    assert (openai.batch_size, openai.chunk_chars, openai.chunk_overlap_chars) == (4, 1000, 100)
    assert openai.threads == 2
    assert (openai.timeout_ms, openai.query_prefix, openai.document_prefix) == (500, "query: ", "passage: ")


def test_status_summary_names_the_key_variable_never_a_value(tmp_path: Path) -> None:
    cfg = _load(tmp_path, 'provider = "openai"\napi_key_env = "EMB_KEY"\n')
    summary = config_summary(cfg)["embedding"]
    assert summary["apiKeyEnv"] == "EMB_KEY" and summary["baseUrl"] == "https://api.openai.com/v1"
    assert summary["provider"] == "openai" and summary["model"] == "text-embedding-3-small"


def test_session_overrides_switch_the_provider(tmp_path: Path) -> None:
    cfg = _load(tmp_path, 'provider = "local"\n', {"embedding": {"provider": "none"}})
    assert cfg.embedding.provider == "none" and cfg.embedding.model is None


@pytest.mark.parametrize(
    ("embedding", "key", "expected"),
    [
        ('provider = "local"\nmodel = "gpt-9"\n', "embedding.model", "bundled local models: all-MiniLM"),
        ("dimensions = 512\n", "embedding.dimensions", "384"),
        ('base_url = "http://127.0.0.1:1"\n', "embedding.base_url", "no value"),
        ('provider = "ollama"\nbase_url = "ftp://x"\n', "embedding.base_url", "http://"),
        ('provider = "openai"\nbase_url = "https://u:p@h/v1"\n', "embedding.base_url", "without credentials"),
        ('provider = "openai"\napi_key_env = "sk-ABCdef0123456789XYZabc"\n', "embedding.api_key_env", "NAME"),
        ('provider = "openai"\napi_key_env = "has space"\n', "embedding.api_key_env", "environment variable"),
        ("chunk_chars = 1000\nchunk_overlap_chars = 600\n", "embedding.chunk_overlap_chars", "at most half"),
        ("chunk_chars = 100\n", "embedding.chunk_chars", ">= 200"),
        ("batch_size = 0\n", "embedding.batch_size", ">= 1"),
        ("threads = -1\n", "embedding.threads", ">= 0"),
        ("timeout_ms = 10\n", "embedding.timeout_ms", ">= 100"),
        ('provider = "openai"\ndimensions = 4\n', "embedding.dimensions", ">= 8"),
        ("query_prefix = 3\n", "embedding.query_prefix", "str"),
        ('document_prefix = "' + "x" * 101 + '"\n', "embedding.document_prefix", "length <= 100"),
        ('provider = "nope"\n', "embedding.provider", '"local", "ollama", "openai", "none"'),
    ],
)
def test_invalid_values_are_structured_errors(
    tmp_path: Path, embedding: str, key: str, expected: str
) -> None:
    err = _error(tmp_path, embedding)
    assert err.code == "CONFIG_INVALID", err
    assert err.details["key"] == key and expected in err.details["expected"], err.details
    assert "sk-ABCdef" not in err.message and "sk-ABCdef" not in err.suggestion


def test_unknown_embedding_key_suggests_the_right_one(tmp_path: Path) -> None:
    err = _error(tmp_path, "batchsize = 3\n")
    assert err.code == "CONFIG_UNKNOWN_KEY" and err.details["closest"] == "embedding.batch_size"
