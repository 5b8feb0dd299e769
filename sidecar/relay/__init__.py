"""Relayed events in: the push receiver and pull client (``transport``) and the exactly-once inbox."""
