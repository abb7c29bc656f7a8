"""The read path: what a placement would show a person now, without changing anything.

``recommend`` tracks nothing, explores nothing and logs nothing (agent consoles, previews):
the best-scored items of a recommendation placement, or the campaign experience with the best
posterior mean (plus the person's weighted affinity with ``affinity_weight``, among the
experiences the person's segments allow). It takes the shared side of the engine's lock, so reads run their GIL-free
kernels side by side. Results have an empty ``decision_id`` and propensity 1. ``interests``
reads a person's strongest interests, ``attributes`` their attributes with provenance.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from . import arguments
from ._kernels import decide as D
from .consent.store import PURPOSE, cell
from .errors import SchemaError
from .schemas import Decision, SlotChoice

if TYPE_CHECKING:
    from .engine import Engine
    from .placements import Placement

__all__ = ["recommend", "recommend_many", "interests", "attributes"]


_local = threading.local()


def _read_work(n_items: int, slots: int) -> tuple[np.ndarray, ...]:
    """This thread's scratch for the read kernel (readers run concurrently: one each)."""
    work: tuple[np.ndarray, ...] | None = getattr(_local, "work", None)
    if work is None or work[0].shape[0] != n_items or work[3].shape[0] != slots:
        work = D.new_read_work(n_items, slots)
        _local.work = work
    return work


def recommend(engine: Engine, ids: Mapping[str, str], *, placement: str, now: int) -> Decision:
    """What ``placement`` would show the person ``ids`` at ``now`` (see the module docstring).

    Raises
    ------
    UnknownPlacementError, SchemaError
    """
    t0 = _time.perf_counter_ns()
    pl = engine.placement(placement)
    now = arguments.epoch_ms(now, "now")
    keys, _ = engine.identity.keys_of(ids)
    with engine.journal.lock.read():
        rows = engine.identity.resolve_keys(keys)
        hit = rows[rows >= 0]
        row = int(hit[0]) if hit.shape[0] else -1
        person = engine.people.person_of(row)
        refused = _refused(engine, pl, row)
        if refused:
            slots, personalized = [], False
        elif pl.kind == "campaign":
            eligible = pl.eligible_experiences(now).astype(bool)
            means = pl.bandit.means() if pl.bandit is not None else np.zeros(len(pl.contents))
            known = 0 <= row < engine.profiles.n_rows
            target = engine.segments_.target(pl.index)
            gate = target.allowed(row, now) if target is not None and known else None
            if gate is not None:  # experiences gated by a segment the person is not in
                eligible &= gate.astype(bool)
            elif target is not None and target.experiences:  # an unknown person is in no segment
                eligible[[e for e, _, _ in target.experiences]] = False
            personalized = known and pl.uses_affinity and pl.bonus_weight != 0.0 and bool(
                engine.consent.grid_of(row) >> _cell_of(pl) & 1
            )
            if personalized:  # the posterior mean plus the person's weighted affinity, as decide scores it
                aff, _ = pl.affinities(*engine.profiles.read_copy(row, now, engine.half_lives_))
                means = means + pl.bonus_weight * aff
            means = np.where(eligible, means, -np.inf)
            best = int(np.argmax(means)) if eligible.any() else -1
            slots = (
                [] if best < 0 else [SlotChoice(content=pl.contents[best], score=float(means[best]), propensity=1.0)]
            )
        else:
            prof, pop = engine.profiles, engine.scorer.popularity_
            # a profile loaded in bulk (link_many) and read before its first event holds no
            # interest yet, and the profile store may not have grown to its row: none is read
            held = row if row < prof.n_rows else -1
            personalized = held >= 0 and bool(engine.consent.grid_of(row) >> _cell_of(pl) & 1)
            ranker = pl.ranker if personalized else None
            k = pl.spec.slots if ranker is None else ranker.retrieve  # the ranker re-ranks a retrieval
            out = D.new_out(k)
            params = pl.params.copy()  # the writer sets its own P_INV_MAX: readers keep theirs
            params[D.P_INV_MAX] = pop.inv_max()
            m = D.recommend_one(
                (prof.fid_, prof.score_, prof.t_, prof.purchased_),
                held,
                now,
                int(personalized),
                engine.half_lives_,
                (engine.catalog.fv_indptr, engine.catalog.fv_items, engine.catalog.fv_data),
                pop.acc_,
                pl.plc,
                params,
                k,
                _read_work(engine.catalog.n_items, prof.slots),
                out,
                np.zeros(D.N_COUNTS, dtype=np.int64),
            )
            items, scores = out[0][:m], out[1][:m]
            if ranker is not None:  # the greedy decision's order: model score, ties to the retrieval's
                scores = ranker.score_with(held, now, items, ranker.featurizer.context(pl.spec.channel, None, now))
                order = np.argsort(-scores, kind="stable")[: pl.spec.slots]
                items, scores = items[order], scores[order]
            slots = [
                SlotChoice(content=pl.contents[int(i)], score=float(x), propensity=1.0)
                for i, x in zip(items.tolist(), scores.tolist())
            ]
    return Decision(
        decision_id="",
        placement=pl.spec.name,
        time=now,
        profile=row,
        person=person,
        policy="greedy",
        policy_version=1,
        slots=slots,
        candidates=-1,
        personalized=personalized,
        latency_us=(_time.perf_counter_ns() - t0) / 1000.0,
    )


def recommend_many(
    engine: Engine, ids: list[dict[str, str]], *, placement: str, now: int | list[int]
) -> list[Decision]:
    """:func:`recommend` for a batch (a call list, a segment export): the read kernel runs over
    parts of the batch in several threads (it releases the GIL), with the same results as one
    call each.

    Raises
    ------
    UnknownPlacementError, SchemaError
    """
    t0 = _time.perf_counter_ns()
    pl = engine.placement(placement)
    id_maps = arguments.id_maps(ids)
    b = len(id_maps)
    times = now.tolist() if isinstance(now, np.ndarray) else now
    nows = np.array(arguments.epoch_ms_list(times, b, "now"), dtype=np.int64)
    if pl.kind == "campaign":
        return [recommend(engine, i, placement=placement, now=int(t)) for i, t in zip(id_maps, nows)]
    assert pl.state is not None
    key_lists = [engine.identity.keys_of(i)[0] for i in id_maps]
    offsets = np.zeros(b + 1, dtype=np.int64)
    np.cumsum([k.shape[1] for k in key_lists], out=offsets[1:])
    all_keys = np.concatenate(key_lists, axis=1) if b else np.empty((2, 0), dtype=np.uint64)
    prof, pop, cat = engine.profiles, engine.scorer.popularity_, engine.catalog
    k = pl.spec.slots
    out_idx = np.zeros((b, k), dtype=np.int64)
    out_score = np.zeros((b, k), dtype=np.float64)
    out_prop = np.zeros((b, k), dtype=np.float64)
    counts = np.zeros((b, D.N_COUNTS), dtype=np.int64)
    params = pl.params.copy()
    with engine.journal.lock.read():
        found = engine.identity.resolve_keys(all_keys)
        rows = np.full(b, -1, dtype=np.int64)
        for j in range(b):
            hit = found[offsets[j] : offsets[j + 1]]
            hit = hit[hit >= 0]
            if hit.shape[0]:
                rows[j] = hit[0]
        known = rows >= 0
        persons = np.full(b, -1, dtype=np.int64)
        pp = engine.people.person_
        inside = known & (rows < pp.shape[0])  # bulk-loaded rows may have no person yet
        persons[inside] = pp[rows[inside]]
        allowed = np.zeros(b, dtype=bool)
        allowed[known] = (engine.consent.grids_of(rows[known]) >> np.uint64(_cell_of(pl)) & np.uint64(1)) != 0
        refused = np.array([_refused(engine, pl, int(r)) != 0 for r in rows], dtype=bool)
        params[D.P_INV_MAX] = pop.inv_max()
        held = np.where(rows < prof.n_rows, rows, -1)  # as in recommend: rows past the store hold nothing
        allowed &= held >= 0
        D.recommend_batch(
            (prof.fid_, prof.score_, prof.t_, prof.purchased_),
            held,
            nows,
            allowed.astype(np.uint8),
            engine.half_lives_,
            (cat.fv_indptr, cat.fv_items, cat.fv_data),
            pop.acc_,
            pl.plc,
            params,
            k,
            (out_idx, out_score, out_prop),
            counts,
        )
    out_n = counts[:, D.C_FILLED]
    each = (_time.perf_counter_ns() - t0) / 1000.0 / max(b, 1)
    return [
        Decision(
            decision_id="",
            placement=pl.spec.name,
            time=int(nows[j]),
            profile=int(rows[j]),
            person=int(persons[j]),
            policy="greedy",
            policy_version=1,
            candidates=-1,
            personalized=bool(allowed[j]) and not refused[j],
            latency_us=each,
            slots=[
                SlotChoice(content=pl.contents[int(out_idx[j, s])], score=float(out_score[j, s]), propensity=1.0)
                for s in range(0 if refused[j] else int(out_n[j]))
            ],
        )
        for j in range(b)
    ]


def interests(engine: Engine, ids: dict[str, str], *, now: int, top: int = 10) -> list[tuple[str, float]]:
    """The strongest ``top`` interests at ``now`` of the person ``ids`` resolves to: (facet value,
    share of interest); empty when no identifier is known.

    Raises
    ------
    SchemaError
        If ``ids``, ``now`` or ``top`` is malformed.
    """
    now = arguments.epoch_ms(now, "now")
    if isinstance(top, bool) or not isinstance(top, int) or top < 0:
        raise SchemaError(f"Expected `top` to be an int >= 0, got {top!r}")
    row = engine.profile_row(ids)
    if not 0 <= row < engine.profiles.n_rows:  # unknown, or loaded in bulk and never seen: no interest
        return []
    fids, scores = engine.profiles.read_copy(row, now, engine.half_lives_)
    total = float(scores.sum()) or 1.0
    return [(engine.catalog.fv_names[int(f)], float(s) / total) for f, s in zip(fids[:top], scores[:top])]


def attributes(engine: Engine, ids: Mapping[str, str]) -> dict[str, Any]:
    """The attributes of the person ``ids`` resolves to (resolved without creating anything):
    name -> (value, source, event time); empty when no identifier is known or none is set.

    Raises
    ------
    SchemaError
        If ``ids`` is malformed.
    """
    keys, _ = engine.identity.keys_of(arguments.identifiers(ids))
    with engine.journal.lock.read():
        rows = engine.identity.resolve_keys(keys)
        hit = rows[rows >= 0]
        return engine.attributes_.get(int(hit[0])) if hit.shape[0] else {}


def _refused(engine: Engine, pl: Placement, row: int) -> int:
    """The consent cells ``pl``'s content needs that the person at ``row`` (-1: an unknown one,
    who has the default grid) refuses."""
    allow = engine.consent.grid_of(row)
    return pl.requires & ~allow


def _cell_of(pl: Placement) -> int:
    """The consent cell of personalization on ``pl``'s channel."""
    return cell(PURPOSE["personalization"], pl.channel)
