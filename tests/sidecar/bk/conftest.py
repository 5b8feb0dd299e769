"""The BlueKing API rig of tests/sidecar/esb, shared here: a sidecar app over HTTP, WeChat scripted."""

from tests.sidecar.esb.conftest import make_rig, rig

__all__ = ["make_rig", "rig"]
