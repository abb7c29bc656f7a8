"""Outcome spec: how long after a decision a click or conversion is still joined to it."""

from __future__ import annotations

import math

from msgspec import Struct

from ._spec import DAY_MS, SPEC, check

__all__ = ["OutcomesSpec"]


class OutcomesSpec(Struct, **SPEC):
    """The attribution window of outcomes.

    An outcome is joined to its decision when it is dated at or after the decision and at most
    ``attribution_window_days`` after it; a decision older than the window (by the newest
    decision or outcome time the engine has admitted) is no longer pending.

    >>> OutcomesSpec(attribution_window_days=1.5).window_ms
    129600000
    """

    attribution_window_days: float = 7.0

    def __post_init__(self) -> None:
        d = self.attribution_window_days
        check(
            math.isfinite(d) and 0.0 < d <= 36_500.0,
            f"`attribution_window_days` must be in (0, 36500], got {d!r}",
        )

    @property
    def window_ms(self) -> int:
        """The window in milliseconds (event times are epoch ms)."""
        return round(self.attribution_window_days * DAY_MS)
