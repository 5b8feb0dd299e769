"""The one retry pause both tiers use: exponential backoff with full jitter and a cap.

Attempt ``n`` (1-based) waits a uniform random time in ``[0, min(max_s, initial_s * 2**(n-1))]``.
Full jitter rather than a fixed or half-jittered pause because the callers that back off together
(push workers, replicas refreshing one token, sidecars polling one gateway) would otherwise
retry in lockstep and hit a recovering peer at the same instants; the cap keeps a long outage
from growing the pause without bound. The random source is injected so tests can fix it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["RetryPolicy"]

MAX_DOUBLINGS = 32  # 2**32 times any initial pause is past every cap; keeps the float finite


@dataclass(frozen=True)
class RetryPolicy:
    """How long to pause before retry ``attempt``; holds no count, so any caller may share it."""

    initial_s: float
    max_s: float
    rng: random.Random = field(default_factory=random.SystemRandom, repr=False, compare=False)

    def ceiling(self, attempt: int) -> float:
        """The longest pause attempt ``attempt`` may get: doubling from ``initial_s``, capped."""
        doublings = min(max(attempt, 1) - 1, MAX_DOUBLINGS)
        return min(self.max_s, self.initial_s * 2.0**doublings)

    def delay(self, attempt: int) -> float:
        """A pause drawn uniformly from ``[0, ceiling(attempt)]`` (full jitter)."""
        return self.rng.uniform(0.0, self.ceiling(attempt))
