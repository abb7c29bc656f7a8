"""The events of a synthetic world while they are generated: payloads with their true people
in generation order, the order numbers handed out, and the purchases that returns come from."""

from __future__ import annotations

from typing import Any

import numpy as np

from .spec import I32

__all__ = ["EventBuffer"]


class EventBuffer:
    """Append-only event buffer: payloads, times and true people in generation order."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.times: list[int] = []
        self.people: list[int] = []
        #: (person, item, time) of every purchase so far, in generation order
        self.purchases: list[tuple[int, int, int]] = []
        self.orders = 0

    def add(self, payload: dict[str, Any], person: int) -> None:
        self.payloads.append(payload)
        self.times.append(payload["time"])
        self.people.append(person)

    def order_id(self) -> str:
        """The id of a new order (``o-0000001``, ``o-0000002`` ...)."""
        self.orders += 1
        return f"o-{self.orders:07d}"

    def in_time_order(self) -> tuple[list[dict[str, Any]], I32]:
        """The payloads sorted by time (ties keep generation order) and the true person of each."""
        order = np.argsort(np.array(self.times, dtype=np.int64), kind="stable")
        events = [self.payloads[i] for i in order.tolist()]
        event_person: I32 = np.array(self.people, dtype=np.int32)[order]
        return events, event_person
