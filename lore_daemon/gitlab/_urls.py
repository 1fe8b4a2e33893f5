"""Base-URL normalisation and the "stays on the configured GitLab" check.

Both the client (redirects, ``Link`` headers) and target parsing (pasted URLs) must decide whether
a URL belongs to the configured GitLab. They share this one definition so the token-safety rule
cannot drift: same scheme, same host (case-insensitive), same effective port, and a path inside
the base path (``https://h/gitlab`` owns ``/gitlab/...`` but not ``/gitlabx/...``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from lore_daemon.errors import ConfigError

_DEFAULT_PORTS = {"http": 80, "https": 443}
_API_SUFFIX = re.compile(r"/api/v\d+$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Origin:
    """The parts of a URL that decide where a request (and its token) would go."""

    scheme: str
    host: str
    port: int
    base_path: str  # without trailing slash; "" for a GitLab at the root

    def owns(self, url: str) -> bool:
        """True when ``url`` points inside this GitLab (scheme, host, port and base path)."""
        other = parse_origin(url)
        if other is None:
            return False
        if (other.scheme, other.host, other.port) != (self.scheme, self.host, self.port):
            return False
        path = urlsplit(url).path
        return self.base_path == "" or path == self.base_path or path.startswith(self.base_path + "/")

    def describe(self) -> str:
        """``scheme://host:port/base`` for messages (never carries credentials)."""
        return f"{self.scheme}://{self.host}:{self.port}{self.base_path}"


def parse_origin(url: str) -> Origin | None:
    """Split ``url`` into an :class:`Origin`, or ``None`` when it is not an absolute http(s) URL."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return Origin(
        scheme=scheme,
        host=parts.hostname.lower(),
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        base_path=parts.path.rstrip("/"),
    )


def normalize_base_url(base_url: str) -> str:
    """Return ``base_url`` without trailing slash, query or fragment; reject what is not http(s).

    Raises ``ConfigError(CONFIG_INVALID)`` naming ``gitlab.base_url``: a bad base URL is a
    configuration mistake, and it must never be guessed at because the token follows it. That
    includes a URL of the API itself (``…/api/v4``): requests would go to ``/api/v4/api/v4/…``.
    """
    origin = parse_origin(base_url)
    parts = urlsplit(base_url.strip())
    if origin is None or parts.username is not None or parts.password is not None:
        raise ConfigError(
            "gitlab.base_url must be an absolute http(s) URL without credentials",
            "CONFIG_INVALID",
            "Set gitlab.base_url to something like https://gitlab.example.com or https://host/gitlab.",
            details={"key": "gitlab.base_url"},
        )
    api = _API_SUFFIX.search(origin.base_path)
    if api is not None:
        root = f"{origin.scheme}://{parts.netloc.split('@')[-1].lower()}{origin.base_path[: api.start()]}"
        raise ConfigError(
            f"gitlab.base_url ends in {api.group(0)}: it must be GitLab's own address, "
            "lore-daemon adds /api/v4 itself",
            "CONFIG_INVALID",
            f"Set gitlab.base_url = \"{root}\".",
            details={"key": "gitlab.base_url", "suggested": root},
        )
    return f"{origin.scheme}://{parts.netloc.split('@')[-1].lower()}{origin.base_path}"


def strip_credentials(url: str) -> str:
    """``url`` without any ``user:password@`` part, safe to echo in errors."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unclosed IPv6 bracket: not a URL, but still never echo a password
        return url.rsplit("@", 1)[1] if "@" in url else url
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]).geturl()
