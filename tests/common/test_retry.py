"""The retry policy: exponential growth, a cap, full jitter, a replaceable random source."""

from __future__ import annotations

import random

import pytest

from common.retry import RetryPolicy


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (6, 8.0), (60, 8.0), (10_000, 8.0)]
)
def test_retry_policy_ceiling_doubles_per_attempt_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert RetryPolicy(0.5, 8.0).ceiling(attempt) == ceiling


def test_retry_policy_attempt_below_one_counts_as_the_first() -> None:
    assert RetryPolicy(0.5, 8.0).ceiling(0) == RetryPolicy(0.5, 8.0).ceiling(-3) == 0.5


@pytest.mark.parametrize("attempt", [1, 3, 5, 60])
def test_retry_policy_delay_spreads_over_zero_to_the_ceiling(attempt: int) -> None:
    policy = RetryPolicy(0.5, 8.0, rng=random.Random(7))
    delays = [policy.delay(attempt) for _ in range(500)]
    ceiling = policy.ceiling(attempt)
    assert all(0.0 <= d <= ceiling for d in delays)
    assert min(delays) < ceiling * 0.1 and max(delays) > ceiling * 0.9


def test_retry_policy_same_seed_gives_the_same_pauses() -> None:
    first = RetryPolicy(0.5, 8.0, rng=random.Random(3))
    second = RetryPolicy(0.5, 8.0, rng=random.Random(3))
    assert [first.delay(n) for n in range(1, 20)] == [second.delay(n) for n in range(1, 20)]


def test_retry_policy_zero_initial_pause_never_waits() -> None:
    policy = RetryPolicy(0.0, 30.0, rng=random.Random(1))
    assert {policy.delay(n) for n in range(1, 10)} == {0.0}


def test_retry_policy_repr_hides_the_random_source() -> None:
    assert repr(RetryPolicy(0.5, 8.0)) == "RetryPolicy(initial_s=0.5, max_s=8.0)"
