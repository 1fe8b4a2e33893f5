"""JSON-RPC plumbing under the server: pygls protocol tweaks and the stdio transport.

pygls serves the LSP lifecycle well, but several of its defaults silently drop responses for a
custom-method daemon (see docs/protocol.md, "Robustness"); this package overrides exactly those.
"""
