"""Python client for lore-daemon and the `lore` shell bridge."""
