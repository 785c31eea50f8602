"""Retry timing shared by webhook and mail delivery."""

import random
from collections.abc import Sequence
from datetime import timedelta


def next_delay(
    schedule: Sequence[timedelta], attempts_made: int, *, at_least: timedelta | None = None
) -> timedelta | None:
    """Delay before the next attempt, ±10 % jitter; None once ``schedule`` is used up."""
    if attempts_made > len(schedule):
        return None
    jittered = schedule[attempts_made - 1] * random.uniform(0.9, 1.1)
    return max(jittered, at_least) if at_least else jittered
