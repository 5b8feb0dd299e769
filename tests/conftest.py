"""Fixtures shared by every suite."""

import json
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def vectors() -> dict[str, Any]:
    """The official WXBizMsgCrypt known-answer vectors (copied from shared/vectors)."""
    return json.loads((DATA / "crypto.json").read_text(encoding="utf-8"))
