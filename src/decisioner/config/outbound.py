"""Outbound spec: frequency caps and quiet hours of outbound messages per channel (see
:mod:`decisioner.outbound`).

``[outbound]`` in the configuration:

* ``caps``: per channel, at most ``max`` messages in any ``days`` (a sliding window ending at the
  send time), e.g. ``caps = {email = {max = 2, days = 7}, sms = {max = 1, days = 1}}``; a
  channel without a cap is not capped;
* ``quiet``: per channel, the local times ``[from, to]`` ("HH:MM", 24 h) when nobody is sent a
  message, e.g. ``quiet = {sms = ["21:00", "08:00"]}`` (a window may wrap midnight; ``from``
  is in it, ``to`` is not);
* ``timezone_attribute``: a declared ``category`` attribute holding each person's IANA time
  zone (``"Europe/Paris"``); people without one, or with a zone name that is not known, are in
  ``default_timezone`` (default ``"UTC"``).

The send history keeps, per person and channel, the times of the newest ``max`` sends of the
largest cap (at least one): ``8 * len(OUTBOUND_CHANNELS) * history`` bytes a profile.

>>> OutboundSpec(caps={"email": CapSpec(max=2, days=7)}, quiet={"sms": ("21:00", "08:00")}).history
2
"""

from __future__ import annotations

from typing import Annotated, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from msgspec import Meta, Struct

from ._spec import SPEC, check

__all__ = ["CapSpec", "OutboundSpec", "OUTBOUND_CHANNELS", "minutes_of_day"]

#: the channels outbound messages go out on (consent channels of :mod:`decisioner.consent`)
OUTBOUND_CHANNELS: Final = ("email", "sms", "push")


class CapSpec(Struct, **SPEC):
    """At most ``max`` messages in any window of ``days`` days (fractions allowed: 0.5 is 12 h)."""

    max: Annotated[int, Meta(ge=1, le=1000)]
    days: Annotated[float, Meta(gt=0, le=3660)]


def minutes_of_day(text: str, where: str) -> int:
    """Minutes since midnight of ``"HH:MM"`` (a :class:`~decisioner.errors.ConfigError` otherwise)."""
    hh, sep, mm = text.partition(":") if isinstance(text, str) else ("", "", "")
    ok = sep == ":" and len(hh) == 2 and len(mm) == 2 and hh.isdigit() and mm.isdigit()
    check(ok and int(hh) < 24 and int(mm) < 60, f"expected a local time \"HH:MM\", got {text!r} for `{where}`")
    return int(hh) * 60 + int(mm)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class OutboundSpec(Struct, **SPEC):
    """Frequency caps, quiet hours and the time zone of outbound messages (see the module docstring)."""

    caps: dict[str, CapSpec] = {}
    quiet: dict[str, tuple[str, str]] = {}
    timezone_attribute: str | None = None
    default_timezone: str = "UTC"

    def __post_init__(self) -> None:
        for table, names in (("caps", self.caps), ("quiet", self.quiet)):
            for ch in names:
                check(ch in OUTBOUND_CHANNELS,
                      f"expected a channel in {list(OUTBOUND_CHANNELS)}, got {ch!r} for `outbound.{table}`")
        for ch, (start, end) in self.quiet.items():
            a = minutes_of_day(start, f"outbound.quiet.{ch}")
            b = minutes_of_day(end, f"outbound.quiet.{ch}")
            check(a != b, f"expected distinct start and end of quiet hours, got {[start, end]!r} for "
                          f"`outbound.quiet.{ch}`")
        check(_known_zone(self.default_timezone),
              f"expected an IANA time zone name, got {self.default_timezone!r} for `outbound.default_timezone`")

    @property
    def history(self) -> int:
        """Sends kept per person and channel: the largest cap's ``max`` (at least 1)."""
        return max([c.max for c in self.caps.values()] or [1])
