"""What a BlueKing send carries to people, whatever the channel: heading, text, date and remark.

Its own module because the MP template, the WeCom layouts and the form readers all build on it,
and none of them is its home.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Message:
    """The BlueKing message fields; ``date`` and ``remark`` may be empty."""

    heading: str
    message: str
    date: str = ""
    remark: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"heading": self.heading, "message": self.message, "date": self.date, "remark": self.remark}
