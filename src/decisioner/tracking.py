"""Tracking: the identity and profile stages of one event, and what keeps rows in step.

:class:`Tracker` validates an event against the configuration's limits and the catalog
(``validate``: keys and item indices, before anything changes), then applies it (``apply``):
identity linking with merge rules, a person id for a new profile, consent, declared attributes
(:mod:`decisioner.attributes`), decayed interests, popularity, recent purchases and activity,
engagement (:mod:`decisioner.engagement`), the regional pulse of opinions (:mod:`decisioner.pulse`)
and idle-first eviction past ``profiles.max_profiles``. It listens to the identity graph so
that the row-keyed stores (profiles, attributes, people, experiment assignments, outbound sends) follow
merges, splits, erasures and the anonymous scratch row (engagement too), and erasure removes the person's
records from the decision log and the exposures.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

from . import arguments
from .config import DEFAULT_EVENT_WEIGHTS, EngineConfig
from .consent.store import PURPOSE, Step, cell
from .errors import SchemaError
from .identity.keys import KeyMemo
from .profiles import idle_rows
from .schemas import EVENT_TYPES, Event, Identify, Opinion, Purchase
from .scoring import ENGAGEMENTS, AffinityScorer

#: event type code of each tag (the profile journey's ``kind``)
_KIND: Final = {t: i for i, t in enumerate(EVENT_TYPES)}

if TYPE_CHECKING:
    from .privacy import PersonStores
    from .pulse import Pulse

__all__ = ["Tracker", "Checked", "POPULARITY_WEIGHTS"]

#: popularity weight of each event type (how much an interaction says "this item is wanted")
POPULARITY_WEIGHTS: Final[dict[str, float]] = {
    "view": 1.0,
    "click": 1.0,
    "ad_click": 1.0,
    "email_click": 1.0,
    "add_to_cart": 3.0,
    "purchase": 5.0,
    "download": 1.0,
    "coupon_redeem": 1.0,
}
_NO_FVS: Final = np.empty(0, dtype=np.int32)
_NO_WEIGHTS: Final = np.empty(0, dtype=np.float64)
_PERSONALIZATION: Final = PURPOSE["personalization"]
_ANALYTICS: Final = PURPOSE["analytics"]


class Checked(NamedTuple):
    """An event's validated inputs: identifier keys and type codes, item indices, consent steps
    and the declared attributes it sets (``(name, value)`` pairs)."""

    keys: np.ndarray
    types: np.ndarray
    items: list[int]
    consent: list[Step]
    attributes: list[tuple[str, Any]]


class Tracker:
    """The identity and profile stages over the stores that hold a person (see the module
    docstring) and the popularity prior.

    ``events_`` counts applied events, ``evicted_`` profiles evicted for the profile bound.
    """

    def __init__(
        self, config: EngineConfig, stores: PersonStores, scorer: AffinityScorer, *, pulse: Pulse | None = None
    ) -> None:
        self.config = config
        self.catalog = stores.catalog
        self.identity = stores.identity
        self.profiles = stores.profiles
        self.people = stores.people
        self.consent = stores.consent
        self.erasures = stores.erasures
        self.experiments = stores.experiments
        self.scorer = scorer
        self.decision_log = stores.decision_log
        self.half_lives = stores.half_lives
        self.attributes = stores.attributes
        self.engagement = stores.engagement
        self.pulse = pulse if pulse is not None and pulse.active else None
        self._region = f"{config.pulse.region_attribute}/value"
        self.activity = stores.activity
        self.sends = stores.sends
        ps = config.profiles
        self._event_weight = {t: ps.event_weights.get(t, DEFAULT_EVENT_WEIGHTS[t]) for t in EVENT_TYPES}
        self.events_ = 0
        self.evicted_ = 0
        self._evicting = False
        self._synced = 0
        self._now = 0  # the event time of the event being applied (merges write it to the consent history)
        self.sync_rows()
        self.identity.add_listener(self._on_merge)
        self.identity.add_split_listener(self._on_split)
        self.identity.add_erase_listener(self._on_erase)
        self.identity.add_anonymous_listener(self._on_anonymous)

    def sync_rows(self) -> None:
        """Grow the row-keyed stores to the identity graph's rows (cheap when nothing grew)."""
        n = self.identity.n_rows
        if n <= self._synced:
            return
        self._synced = n
        self.profiles.ensure(n)
        self.consent.ensure(n)
        self.people.ensure(n)
        self.experiments.ensure(n)
        self.attributes.ensure(n)
        self.engagement.ensure(n)
        if self.activity is not None:
            self.activity.ensure(n)
        if self.sends is not None:
            self.sends.ensure(n)

    def _on_merge(self, survivor: int, absorbed: np.ndarray) -> None:
        self.sync_rows()
        self.experiments.merge(survivor, absorbed)
        self.people.merge(survivor, absorbed)
        self.fold_rows(survivor, absorbed)
        self.identity.release_rows(absorbed)

    def fold_rows(self, survivor: int, absorbed: np.ndarray) -> None:
        """Fold the person stores' rows ``absorbed`` into ``survivor`` by each store's merge rule
        (interests added with decay, attributes reconciled, consent as :meth:`ConsentStore.merge`
        says ...); the absorbed rows are reset. Identity, people and experiment assignments are
        the caller's (a merge in the graph, or a worker folding rows a shared graph merged)."""
        person = self.people.person_of(survivor)
        for r in absorbed.tolist():
            self.profiles.merge(survivor, r, self.half_lives)
            self.consent.merge(survivor, r, person, self._now)
            self.attributes.merge(survivor, r)
            self.engagement.merge(survivor, r)
            if self.activity is not None:
                self.activity.merge(survivor, r)
            if self.sends is not None:
                self.sends.merge(survivor, r)

    def _on_split(self, row: int, new_rows: np.ndarray) -> None:
        # unmerge: the state stays with `row`; split-off pieces are new people, empty, with its consent
        self.sync_rows()
        for r in new_rows.tolist():
            self.profiles.clear(r)
            self.consent.copy(r, row)
            self.attributes.clear(r)
            self.engagement.clear(r)
            if self.activity is not None:
                self.activity.clear(r)
            if self.sends is not None:
                self.sends.clear(r)
            self.experiments.clear([r])
            self.people.new(r)

    def _on_erase(self, rows: np.ndarray) -> None:
        # erasure (or eviction): the profiles lost every identifier; wipe them before reuse
        self.sync_rows()
        if self._evicting:
            self.people.release(rows)
        else:
            gone = self.people.erase(rows)
            removed = self.erasures.counts
            removed["profiles"] += int(np.asarray(rows).shape[0])
            removed["people"] += len(gone)
            removed["decisions"] += self.decision_log.erase(gone)
            removed["exposures"] += self.experiments.exposures.erase(gone)
            removed["consent_history"] += self.consent.erase(gone)
            self.erasures.people |= gone
        self.profiles.clear(rows)
        self.consent.clear(rows)
        self.attributes.clear(rows)
        self.engagement.clear(rows)
        if self.activity is not None:
            self.activity.clear(rows)
        if self.sends is not None:
            self.sends.clear(rows)
        self.experiments.clear(rows)
        self.identity.release_rows(rows)

    def _on_anonymous(self, row: int) -> None:
        # no usable identifier: a scratch row that holds nothing and is nobody
        self.sync_rows()
        self.profiles.clear(row)
        self.attributes.clear(row)
        self.engagement.clear(row)
        if self.activity is not None:
            self.activity.clear(row)
        if self.sends is not None:
            self.sends.clear(row)
        self.consent.deny_all(row)
        self.people.release([row])

    # ------------------------------------------------------------------ tracking
    def validate(
        self, event: Event, *, hashed: bool = False, load: bool = False,
        memo: KeyMemo | None = None,
    ) -> Checked:
        """Everything that can fail, before anything changes: keys, item indices, consent and
        declared attributes (``load``: a batch load, see :meth:`load_events`; ``memo``: a batch's
        keys of identifiers already hashed, see :class:`~decisioner.identity.keys.KeyMemo`)."""
        lim = self.config.limits
        if len(event.ids) > lim.max_identifiers:
            raise SchemaError(f"Expected at most {lim.max_identifiers} identifiers, got {len(event.ids)} - at `$.ids`")
        if len(event.attrs) > lim.max_attributes:
            raise SchemaError(
                f"Expected at most {lim.max_attributes} attributes, got {len(event.attrs)} - at `$.attrs`"
            )
        pairs: list[tuple[str, Any]] = []
        if self.attributes.active and (event.attrs or load):
            pairs = self._check_attributes(event, load)
        if hashed:
            keys, types = self.identity.keys_of_hashed(event.ids)
        else:
            keys, types = self.identity.keys_of(event.ids, memo=memo)
        items: list[int] = []
        if event.item is not None:
            items.append(self.catalog.item_index(event.item))
        if isinstance(event, Purchase):
            items.extend(self.catalog.item_index(it, where=f"$.items[{j}]") for j, it in enumerate(event.items))
        steps = self.consent.parse(event) if event.consent or event.gpc or event.tcf is not None else []
        return Checked(keys, types, items, steps, pairs)

    def apply(
        self, event: Event, checked: Checked, *, channel: int = -1, defer_interest: bool = False, load: bool = False
    ) -> tuple[int, np.ndarray, np.ndarray]:
        """Identity, people, consent, attributes, interests and popularity for one validated event
        (``load``: a batch load of attributes, see :meth:`load_events`).

        Consent is checked on ``channel`` (a consent channel index; -1: the one the event's own
        channel counts as): interests and recent purchases need personalization consent there,
        popularity needs analytics consent.

        Returns the row and, with ``defer_interest``, the interest update still to apply
        (facet values, weights; empty when none): the fused decide kernel applies it itself.
        """
        keys, types, items, steps, pairs = checked
        self._now = event.time
        codes = types.tolist()
        if codes and min(codes) < 0:  # new identifier types: registered here, inside admission
            types = self.identity.register_types(event.ids, types)
        res = self.identity.link_keys(keys, types, time=event.time, source=event.channel, consent=event.consent)
        row = res.row
        self.sync_rows()
        prof = self.profiles
        if res.new:
            prof.clear(row)
            self.consent.clear(row)
            self.engagement.clear(row)
            if self.activity is not None:
                self.activity.clear(row)
            if self.sends is not None:
                self.sends.clear(row)
            self.experiments.clear([row])  # a recycled row must not inherit anyone's assignment
            self.people.new(row)
            cap = self.config.profiles.max_profiles
            if cap and self.identity.n_profiles > cap:
                self.evict(cap, keep=row)
        elif self.people.person_[row] < 0 and not res.anonymous:
            self.people.new(row)  # a profile loaded in bulk (link_many) gets its person at its first event
        if steps and not res.anonymous:
            self.consent.apply(row, self.people.person_of(row), steps, event.time, event.channel)
        etype = str(type(event).__struct_config__.tag)
        now = event.time
        fvs, wts = _NO_FVS, _NO_WEIGHTS
        if items:
            if channel < 0:
                channel = self.consent.channel_of(event.channel)
            allowed = int(self.consent.allow_[row])
            personal = allowed >> cell(_PERSONALIZATION, channel) & 1
            w = self._event_weight[etype]
            if w != 0.0 and personal:
                fvs, wts = self.catalog.items_fvs(items, w)
                if not defer_interest:
                    prof.update(row, fvs, wts, now, self.half_lives)
                    fvs, wts = _NO_FVS, _NO_WEIGHTS
            pw = POPULARITY_WEIGHTS.get(etype, 0.0)
            if pw and allowed >> cell(_ANALYTICS, channel) & 1:
                engaged = etype in ENGAGEMENTS
                for i in items:
                    self.scorer.add_popularity(i, pw, now)
                    self.scorer.count(i, engaged, now)
            if personal:
                for i in items:
                    prof.add_recent(row, i, now)
                if etype == "purchase":
                    for i in items:
                        prof.add_purchase(row, i)
        if event.attrs and self.attributes.active and not (res.anonymous or res.suppressed):
            self._set_attributes(row, event, pairs, load, channel)
        # a batch load is a system of record's, not an act of the person: no engagement
        if (self.engagement.counts(etype) or self.pulse is not None) and not (load or res.anonymous or res.suppressed):
            self._engage(row, event, etype, channel)
        if self.activity is not None and self.activity.active and not (res.anonymous or res.suppressed):
            self._record_activity(row, etype, now, channel, event.channel)
        if prof.journey_slots and not (load or res.anonymous or res.suppressed):
            # the journey an agent sees is profiling too: personalization consent on the channel
            if channel < 0:
                channel = self.consent.channel_of(event.channel)
            if int(self.consent.allow_[row]) >> cell(_PERSONALIZATION, channel) & 1:
                where = self.consent.channel_of(event.channel)  # the event's own channel, not a placement's
                prof.add_touch(row, now, _KIND[etype], where, items[0] if items else -1)
        prof.touch(row, now)
        self.events_ += 1
        return row, fvs, wts

    # ------------------------------------------------------------------ attributes
    def load_events(self, ids: Any, values: Any, *, source: Any, time: Any) -> list[Identify]:
        """Batch loads of attribute ``values`` (CRM, warehouse) for the people ``ids``, as the
        identify events they are applied as: their identifiers are linked (a person not known
        yet is created), each counts as an event of the person, and every declared attribute of
        ``values`` is offered with provenance ``source`` at event time ``time`` (one, or one each).

        Raises
        ------
        SchemaError
            If an argument is malformed (the attributes are checked by :meth:`validate`).
        """
        id_list = arguments.id_maps(ids, "ids")
        n = len(id_list)
        times = arguments.epoch_ms_list(time.tolist() if isinstance(time, np.ndarray) else time, n, "time")
        source = arguments.text(source, "source", max_len=128)
        if not isinstance(values, list) or len(values) != n:
            raise SchemaError(f"Expected `values` to be a list of {n} mappings (one per person), got {values!r:.60}")
        out = []
        for j, (i, v, t) in enumerate(zip(id_list, values, times)):
            if not isinstance(v, Mapping) or not v:
                raise SchemaError(
                    f"Expected `values[{j}]` to be a non-empty mapping of attribute to value, got {v!r:.60}"
                )
            out.append(Identify(time=t, ids=dict(i), channel=source, attrs=dict(v)))
        return out

    def _check_attributes(self, event: Event, load: bool) -> list[tuple[str, Any]]:
        pairs = self.attributes.check(event.attrs, load=load)
        if pairs:
            self.attributes.check_source(event.channel)
        return pairs

    def _set_attributes(self, row: int, event: Event, pairs: list[tuple[str, Any]], load: bool, channel: int) -> None:
        # from events, attributes are profiling: only with the person's personalization consent
        # on the channel; a batch load comes from a system of record with its own lawful basis
        if channel < 0:
            channel = self.consent.channel_of(event.channel)
        if load or int(self.consent.allow_[row]) >> cell(_PERSONALIZATION, channel) & 1:
            self.attributes.set(row, pairs, source=event.channel, time=event.time)

    def _engage(self, row: int, event: Event, etype: str, channel: int) -> None:
        # engagement is profiling: personalization consent on the channel; an opinion adds to
        # the anonymous regional sums with analytics consent (see decisioner.pulse)
        if channel < 0:
            channel = self.consent.channel_of(event.channel)
        allowed = int(self.consent.allow_[row])
        if self.engagement.counts(etype) and allowed >> cell(_PERSONALIZATION, channel) & 1:
            value = 0.0
            if event.value is not None and etype in ("purchase", "return"):
                value = event.value if etype == "purchase" else -event.value
            self.engagement.update(row, event.time, value=value)
        if self.pulse is not None and isinstance(event, Opinion) and allowed >> cell(_ANALYTICS, channel) & 1:
            self.pulse.add(int(self.attributes.arrays_[self._region][row]), event.topic, event.sentiment)

    def _record_activity(self, row: int, etype: str, now: int, channel: int, event_channel: str) -> None:
        # recency and frequency for segments are profiling: personalization consent on the channel
        assert self.activity is not None
        if etype in self.activity.type_index:
            if channel < 0:
                channel = self.consent.channel_of(event_channel)
            if int(self.consent.allow_[row]) >> cell(_PERSONALIZATION, channel) & 1:
                self.activity.record(row, etype, now)

    def evict(self, cap: int, *, keep: int) -> None:
        """Bring the live profiles back under ``cap``: the longest idle, a batch of
        ``evict_fraction * cap`` at once, never ``keep`` (the row being served)."""
        batch = max(1, int(cap * self.config.profiles.evict_fraction))
        n = self.identity.n_profiles - cap + batch - 1
        if n <= 0:
            return
        root = self.identity.rows_["root"][: self.identity.n_rows]
        victims = idle_rows(root, self.profiles.last_seen_, n, keep=keep)
        if victims.shape[0]:
            self._evicting = True
            try:
                self.identity.evict(victims)
            finally:
                self._evicting = False
            self.evicted_ += int(victims.shape[0])
