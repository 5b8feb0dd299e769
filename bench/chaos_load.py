"""What the chaos run does: WeChat's callbacks (through the emulator) and the kills, both seeded.

Callbacks: the emulator's pusher plays WeChat's servers — each callback is signed and encrypted
in its account's mode, given 5 s per attempt and retried with the identical query and body until
a 200 (four attempts in all). ``concurrency`` admin requests are in flight at any time, each
asking a simulated person to write a text (a fresh MsgId) or to press a menu (an event with a
unique EventKey), spread over the three MP accounts and the WeCom corp.

Kills: at seeded points of the run (by how many callbacks have started), a tier gets SIGKILL,
stays down a seeded while, and is restarted on the same config, port and SQLite files.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from devtools.emulator.client import EmulatorClient
from devtools.stack import Stack

What = Literal["text", "click", "view"]
FaultTier = Literal["sidecar", "gateway"]
POLL_S = 0.01


@dataclass(frozen=True)
class Planned:
    """One callback to make: who, to which account (an MP app id or the corp id), and what."""

    index: int
    user: str
    app: str | None
    corp: str | None
    what: What


def plan_events(
    count: int, rng: random.Random, mp_apps: Sequence[str], corp: str, users: Sequence[str]
) -> list[Planned]:
    """``count`` callbacks over every account alike: 60 % texts, 25 % CLICK, 15 % VIEW events."""
    targets: list[tuple[str | None, str | None]] = [(app, None) for app in mp_apps] + [(None, corp)]
    plan = []
    for index in range(count):
        app, corp_id = rng.choice(targets)
        what: What = rng.choices(("text", "click", "view"), weights=(60, 25, 15))[0]
        plan.append(Planned(index, rng.choice(users), app, corp_id, what))
    return plan


async def make_callback(emu: EmulatorClient, planned: Planned) -> dict[str, Any]:
    """Have the emulator push one callback and wait until WeChat is done with it (answer or give up)."""
    i = planned.index
    app, corp = planned.app, planned.corp
    if planned.what == "text":
        return dict(await emu.text(planned.user, f"第 {i} 条消息 chaos #{i}", app=app, corp=corp))
    key = f"chaos-{i}" if planned.what == "click" else f"https://bk.example.com/alerts/{i}"
    fields = {"MsgType": "event", "Event": planned.what.upper(), "EventKey": key}
    return dict(await emu.event(planned.user, fields, app=app, corp=corp))


class Load:
    """Makes the planned callbacks with bounded concurrency; ``started`` drives the kills."""

    def __init__(self, emu: EmulatorClient, plan: Sequence[Planned], concurrency: int) -> None:
        self._emu = emu
        self._plan = plan
        self._concurrency = concurrency
        self.started = 0
        self.pushes: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return f"Load({self.started}/{len(self._plan)} started, {len(self.pushes)} done)"

    async def run(self) -> None:
        """Every planned callback; each push is kept with ``began_s``, when it started in the run."""
        pending = iter(self._plan)
        t0 = time.monotonic()

        async def worker() -> None:
            for planned in pending:
                self.started += 1
                began = time.monotonic() - t0
                push = await make_callback(self._emu, planned)
                self.pushes.append({**push, "began_s": round(began, 3)})

        await asyncio.gather(*(worker() for _ in range(self._concurrency)))


@dataclass(frozen=True)
class Fault:
    """SIGKILL ``tier`` once ``at`` callbacks have started; restart it ``down_s`` later."""

    at: int
    tier: FaultTier
    down_s: float


@dataclass(frozen=True)
class Inflicted:
    tier: FaultTier
    at: int  # callbacks started when it was killed
    killed_s: float  # since the run started
    back_s: float  # ready again


def schedule(count: int, rng: random.Random, *, sidecar_kills: int, gateway_kills: int) -> list[Fault]:
    """Kills spread over the middle 80 % of the run, one per equal slot, gateways in random slots.

    A sidecar stays down 0.2-2 s (a crash and a supervisor's restart); a gateway is restarted at
    once, so its outage is its start-up time, which WeChat's retries have to bridge.
    """
    sidecar: FaultTier = "sidecar"
    gateway: FaultTier = "gateway"
    tiers = [sidecar] * sidecar_kills + [gateway] * gateway_kills
    rng.shuffle(tiers)
    slot = 0.8 / max(1, len(tiers))
    faults = []
    for number, tier in enumerate(tiers):
        at = int(count * (0.1 + slot * (number + rng.uniform(0.2, 0.8))))
        down_s = round(rng.uniform(0.2, 2.0), 2) if tier == "sidecar" else 0.0
        faults.append(Fault(at, tier, down_s))
    return faults


async def inflict(stack: Stack, faults: Sequence[Fault], started: Callable[[], int], t0: float) -> list[Inflicted]:
    """Carry out the schedule, in order, as the load reaches each point."""
    done = []
    for fault in faults:
        while started() < fault.at:
            await asyncio.sleep(POLL_S)
        at, killed = started(), time.monotonic() - t0
        await stack.kill(fault.tier)
        await asyncio.sleep(fault.down_s)
        await stack.restart(fault.tier)
        done.append(Inflicted(fault.tier, at, round(killed, 2), round(time.monotonic() - t0, 2)))
    return done


__all__ = ["Fault", "Inflicted", "Load", "Planned", "inflict", "make_callback", "plan_events", "schedule"]
