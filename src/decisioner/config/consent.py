"""Consent spec: the default grid, how event channels map onto consent channels, and how IAB
TCF strings and the Global Privacy Control signal apply (see :mod:`decisioner.consent`)."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta, Struct

from ..consent import CHANNELS, PURPOSES
from ._spec import SPEC, check

__all__ = ["ConsentSpec", "DEFAULT_CHANNEL_MAP"]

#: event channels that are not consent channels themselves, and the consent channel they count as
DEFAULT_CHANNEL_MAP: dict[str, str] = {"call_center": "phone", "service": "phone", "mobile": "app", "mobile_app": "app"}


class ConsentSpec(Struct, **SPEC):
    """What a person allows before they say anything, and how consent signals apply.

    ``defaults`` sets a purpose on every channel for a new person (a purpose not named follows
    ``profiles.default_consent``). ``channels`` maps an event's ``channel`` onto a consent channel
    (a consent channel name maps onto itself; :data:`DEFAULT_CHANNEL_MAP` is added); any other
    event channel counts as ``default_channel``. A TCF string applies on ``tcf_channels``; with
    ``tcf_vendor_id`` a purpose also needs that vendor's consent in the string. ``max_history``
    bounds the consent history kept in memory (oldest changes dropped first, counted).
    """

    defaults: dict[str, bool] = {}
    channels: dict[str, str] = {}
    default_channel: str = "web"
    tcf_channels: tuple[str, ...] = ("web", "app", "ads")
    tcf_vendor_id: Annotated[int, Meta(ge=1, le=65535)] | None = None
    max_history: Annotated[int, Meta(ge=1, le=1_000_000_000)] = 1_000_000

    def __post_init__(self) -> None:
        channels = f"a consent channel in {list(CHANNELS)}"
        for p in self.defaults:
            check(p in PURPOSES, f"expected a purpose in {list(PURPOSES)}, got {p!r} in `consent.defaults`")
        for ev, ch in self.channels.items():
            check(ch in CHANNELS, f"expected {channels}, got {ch!r} in `consent.channels.{ev}`")
        check(
            self.default_channel in CHANNELS,
            f"expected {channels}, got {self.default_channel!r} in `consent.default_channel`",
        )
        for ch in self.tcf_channels:
            check(ch in CHANNELS, f"expected {channels}, got {ch!r} in `consent.tcf_channels`")

    def channel_map(self) -> dict[str, str]:
        """Event channel -> consent channel, for every channel named here or built in."""
        return {**{c: c for c in CHANNELS}, **DEFAULT_CHANNEL_MAP, **self.channels}
