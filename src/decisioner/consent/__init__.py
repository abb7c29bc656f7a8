"""Consent: what a person allows, by purpose and by channel.

A person's consent is a grid of purposes x channels (:data:`PURPOSES`, :data:`CHANNELS`).
Consent events set cells of it; unknown purpose or channel names are errors. The Global
Privacy Control signal and IAB TCF v2.2 consent strings (:mod:`decisioner.consent.tcf`) map
onto the same grid. On a merge the most restrictive value wins, cell by cell.
"""

from __future__ import annotations

from typing import Final

__all__ = ["PURPOSES", "CHANNELS"]

#: purposes a person can allow or refuse, in bit order
PURPOSES: Final[tuple[str, ...]] = ("personalization", "analytics", "marketing", "sale_share", "ad_profiling")
#: channels a purpose can be allowed on, in bit order
CHANNELS: Final[tuple[str, ...]] = ("web", "app", "email", "sms", "push", "phone", "ads")
