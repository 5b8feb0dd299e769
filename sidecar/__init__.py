"""The intranet tier: the only holder of WeChat credentials (see docs/DEVELOPING.md)."""
