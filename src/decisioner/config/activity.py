"""Activity spec: which event types each profile counts, for recency and frequency in segments
(``days_since("purchase")``, ``count("email_open", days=30)``; see :mod:`decisioner.activity`).

``[activity]`` in the configuration:

* ``types``: the counted event types, e.g. ``["purchase", "email_open", "email_click", "view"]``
  (default none: activity is off and costs nothing, neither memory nor time per event; a
  segment that asks ``days_since`` or ``count`` of a type not counted is refused);
* ``bucket_days``: width of one count bucket in days (default 1);
* ``buckets``: buckets kept per profile (default 32): ``count(..., days=N)`` needs
  ``N <= bucket_days * buckets``.

A profile costs ``len(types) * (8 + 2 * buckets) + 4`` bytes: 292 for the four types above.

>>> ActivitySpec(types=("purchase",), buckets=8).horizon_days
8
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from ..schemas import EVENT_TYPES
from ._spec import SPEC, check

__all__ = ["ActivitySpec"]


class ActivitySpec(Struct, **SPEC):
    """Counted event types and the count buckets (see the module docstring)."""

    types: tuple[str, ...] = ()
    bucket_days: Annotated[int, Meta(ge=1, le=366)] = 1
    buckets: Annotated[int, Meta(ge=1, le=400)] = 32

    def __post_init__(self) -> None:
        for t in self.types:
            check(t in EVENT_TYPES, f"expected an event type in {list(EVENT_TYPES)}, got {t!r} in `activity.types`")
        check(len(set(self.types)) == len(self.types), f"expected distinct `activity.types`, got {list(self.types)!r}")

    @property
    def horizon_days(self) -> int:
        """The longest window ``count`` can look back over, in days."""
        return self.bucket_days * self.buckets
