"""lore-daemon: a warm JSON-RPC daemon that keeps a local mirror of GitLab issues and MRs fresh."""

__version__ = "0.1.0"
