"""Pulse: live opinion aggregates by region x topic, the regional dashboard (``[pulse]``).

Every ``opinion`` event (:class:`decisioner.schemas.Opinion`: an inbound message, a survey
answer or an agent's note, with a ``topic`` and a ``sentiment`` in [-1, 1]) adds to one cell
of three arrays indexed ``[region + 1, topic]``: ``count_`` (int64), ``sum_`` and ``sumsq_``
(float64) of the sentiment. The region is the person's region attribute
(``pulse.region_attribute``, a declared ``category`` attribute) *at the time of the opinion*:
an opinion stays where it was given if the person later moves. Row 0 holds people without a
region. Region codes are the attribute's vocabulary codes; topics have a bounded vocabulary of
their own (``max_topics``: an opinion on a further topic is dropped and counted in
:attr:`Pulse.dropped_`). The arrays grow by doubling.

**Consent.** An opinion counts only with the person's analytics consent on the event's channel
(as popularity does). The cells are sums over people, with no person id: an erasure does not
take a person's past opinions out of them (as with popularity), and a cell with fewer than
``min_count`` opinions is reported without a mean, so a small cell does not show one person's
answer.

**The table** (:meth:`Pulse.table`): per region and topic, the count, the mean sentiment and a
Student t interval at ``confidence`` from the sums (mean +- t * s / sqrt(n), ``s`` the sample
standard deviation; none below two opinions).

>>> import numpy as np
>>> from decisioner.config import PulseSpec
>>> p = Pulse(PulseSpec(enabled=True, min_count=2))
>>> for s in (0.5, 0.7, 0.6):
...     p.add(1, "prices", s)
>>> row = p.table(["north", "south"])[0]
>>> row["region"], row["topic"], row["count"], round(row["mean"], 3)
('south', 'prices', 3, 0.6)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import NotReadyError
from .evaluation.inference import t_ppf
from .snapshot import ComponentState

if TYPE_CHECKING:
    from .attributes import AttributeStore
    from .config import PulseSpec

__all__ = ["Pulse", "pulse_table", "format_table"]


class Pulse:
    """Opinion counts, sums and sums of squares by region x topic (see the module docstring).

    Parameters
    ----------
    spec
        The ``[pulse]`` section; with ``enabled`` False nothing is counted.

    ``dropped_`` counts opinions dropped for the topic bound.
    """

    def __init__(self, spec: PulseSpec) -> None:
        self.spec = spec
        self.active = spec.enabled
        self.topics_: list[str] = []
        self._topic_codes: dict[str, int] = {}
        self.dropped_ = 0
        self.opinions_ = 0
        self.count_ = np.zeros((8, 8), dtype=np.int64)
        self.sum_ = np.zeros((8, 8), dtype=np.float64)
        self.sumsq_ = np.zeros((8, 8), dtype=np.float64)

    def _grow(self, r: int, t: int) -> None:
        R, T = self.count_.shape
        if r < R and t < T:
            return
        while R <= r:
            R *= 2
        while T <= t:
            T *= 2
        for name in ("count_", "sum_", "sumsq_"):
            old = getattr(self, name)
            new = np.zeros((R, T), dtype=old.dtype)
            new[: old.shape[0], : old.shape[1]] = old
            setattr(self, name, new)

    def add(self, region: int, topic: str, sentiment: float) -> None:
        """Count one opinion of ``sentiment`` on ``topic`` from ``region`` (an attribute code; -1: none)."""
        code = self._topic_codes.get(topic, -1)
        if code < 0:
            if len(self.topics_) >= self.spec.max_topics:
                self.dropped_ += 1
                return
            code = len(self.topics_)
            self.topics_.append(topic)
            self._topic_codes[topic] = code
        r = region + 1
        self._grow(r, code)
        self.count_[r, code] += 1
        self.sum_[r, code] += sentiment
        self.sumsq_[r, code] += sentiment * sentiment
        self.opinions_ += 1

    def table(self, regions: list[str]) -> list[dict[str, Any]]:
        """Every non-empty cell: ``region`` (``""``: none), ``topic``, ``count``, ``mean``, ``low``,
        ``high`` (None below ``min_count``; the interval None below two opinions), ordered by
        region then topic name. ``regions`` are the region attribute's values by code."""
        names = ["", *regions]
        out = []
        level = self.spec.confidence
        nz = np.argwhere(self.count_ > 0)
        for r, t in nz.tolist():
            n = int(self.count_[r, t])
            mean = low = high = None
            if n >= self.spec.min_count:
                mean = float(self.sum_[r, t]) / n
                if n >= 2:
                    var = max(0.0, (float(self.sumsq_[r, t]) - n * mean * mean) / (n - 1))
                    half = t_ppf(0.5 + level / 2.0, n - 1) * math.sqrt(var / n)
                    low, high = max(-1.0, mean - half), min(1.0, mean + half)
            out.append({"region": names[r] if r < len(names) else f"#{r - 1}", "topic": self.topics_[t],
                        "count": n, "mean": mean, "low": low, "high": high})
        out.sort(key=lambda c: (c["region"], c["topic"]))
        return out

    # ------------------------------------------------------------------ state
    def to_state(self) -> ComponentState:
        """The three arrays, the topic vocabulary and the counters."""
        return {"count": self.count_, "sum": self.sum_, "sumsq": self.sumsq_}, {
            "topics": list(self.topics_), "dropped": self.dropped_, "opinions": self.opinions_,
            "enabled": self.active, "max_topics": self.spec.max_topics,
        }

    def load_state(self, state: ComponentState) -> None:
        """Replace the aggregates with a state from :meth:`to_state`.

        Raises
        ------
        NotReadyError
            If the state was written with another topic bound or with the pulse on and off.
        """
        arrays, meta = state
        if (meta.get("enabled"), meta.get("max_topics")) != (self.active, self.spec.max_topics):
            raise NotReadyError(
                f"expected pulse state with enabled={self.active} and max_topics={self.spec.max_topics}, got "
                f"enabled={meta.get('enabled')} and max_topics={meta.get('max_topics')} - at `pulse`"
            )
        self.count_ = np.array(arrays["count"], dtype=np.int64)
        self.sum_ = np.array(arrays["sum"], dtype=np.float64)
        self.sumsq_ = np.array(arrays["sumsq"], dtype=np.float64)
        self.topics_ = list(meta["topics"])
        self._topic_codes = {t: i for i, t in enumerate(self.topics_)}
        self.dropped_, self.opinions_ = int(meta["dropped"]), int(meta["opinions"])


def pulse_table(pulse: Pulse, attributes: AttributeStore, spec: PulseSpec) -> list[dict[str, Any]]:
    """:meth:`Pulse.table` with the region names of the region attribute.

    Raises
    ------
    NotReadyError
        If the pulse is off (``[pulse] enabled = false``).
    """
    if not pulse.active:
        raise NotReadyError("Expected the regional pulse on (`[pulse] enabled = true`), got it off - at `pulse`")
    return pulse.table(list(attributes.vocab_.get(spec.region_attribute, [])))


def format_table(cells: list[dict[str, Any]]) -> str:
    """The cells of :meth:`Pulse.table` as text: a row per region, a column per topic, each
    ``mean +-half-width (n)``; ``.`` for no opinion, ``n=k`` for a cell reported without a mean.

    >>> print(format_table([{"region": "north", "topic": "prices", "count": 9, "mean": 0.25, "low": 0.05,
    ...                      "high": 0.45}, {"region": "south", "topic": "prices", "count": 2, "mean": None,
    ...                      "low": None, "high": None}]))
    region                    prices
    north            +0.25+-0.20 (9)
    south                        n=2
    """
    topics = sorted({c["topic"] for c in cells})
    regions = sorted({c["region"] for c in cells})
    at = {(c["region"], c["topic"]): c for c in cells}
    width = max(18, *(len(t) + 2 for t in topics)) if topics else 18
    lines = [f"{'region':<14}" + "".join(f"{t:>{width}}" for t in topics)]
    for r in regions:
        row = f"{r or '(none)':<14}"
        for t in topics:
            c = at.get((r, t))
            if c is None:
                text = "."
            elif c["mean"] is None:
                text = f"n={c['count']}"
            elif c["low"] is None:
                text = f"{c['mean']:+.2f} ({c['count']})"
            else:
                text = f"{c['mean']:+.2f}+-{(c['high'] - c['low']) / 2:.2f} ({c['count']})"
            row += f"{text:>{width}}"
        lines.append(row)
    return "\n".join(lines)
