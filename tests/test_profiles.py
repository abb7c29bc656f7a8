"""ProfileStore: decayed sparse affinity, purchases ring, merge and growth (consent: test_consent.py)."""

from __future__ import annotations

import numpy as np
import pytest

from decisioner.profiles import ProfileStore

DAY = 86_400_000
T0 = 1_700_000_000_000
H = 10 * DAY  # half-life of facet values 0..3
HL = np.array([H, H, H, H, 2 * H, 2 * H], dtype=np.float64)  # values 4, 5: twice as long



def upd(store: ProfileStore, row: int, fvs: list[int], ws: list[float], now: int) -> None:
    store.update(row, np.array(fvs, np.int32), np.array(ws, np.float64), now, HL)


def as_dict(store: ProfileStore, row: int, now: int) -> dict[int, float]:
    f, s = store.read(row, now, HL)
    return dict(zip(f.tolist(), s.tolist()))


def test_half_life_exactly_halves() -> None:
    st = ProfileStore(slots=8, capacity=4)
    upd(st, 0, [1, 4], [1.0, 1.0], T0)
    assert as_dict(st, 0, T0) == {1: 1.0, 4: 1.0}
    assert as_dict(st, 0, T0 + H) == {4: 2 ** -0.5, 1: 0.5}  # exact: float32 stores 0.5
    assert as_dict(st, 0, T0 + 2 * H) == {4: 0.5, 1: 0.25}
    assert as_dict(st, 0, T0 - DAY) == {1: 1.0, 4: 1.0}  # reading the past does not grow
    assert st.t_[0] == T0  # reading changes nothing


def test_decay_then_add_matches_hand_computation() -> None:
    st = ProfileStore(slots=8, capacity=4)
    upd(st, 0, [0, 1], [2.0, 1.0], T0)
    upd(st, 0, [0, 2], [1.0, 3.0], T0 + 3 * DAY)
    upd(st, 0, [5], [4.0], T0 + 7 * DAY)
    now = T0 + 20 * DAY
    expected = {
        0: (2.0 * 2 ** (-3 * DAY / H) + 1.0) * 2 ** (-17 * DAY / H),
        1: 1.0 * 2 ** (-20 * DAY / H),
        2: 3.0 * 2 ** (-17 * DAY / H),
        5: 4.0 * 2 ** (-13 * DAY / (2 * H)),
    }
    got = as_dict(st, 0, now)
    assert got.keys() == expected.keys()
    for f, v in expected.items():
        assert got[f] == pytest.approx(v, rel=1e-6)  # float32 storage
    fids, scores = st.read(0, now, HL)
    assert fids.dtype == np.int32 and scores.dtype == np.float64
    assert list(scores) == sorted(scores, reverse=True)


def test_out_of_order_events_do_not_depend_on_arrival_order() -> None:
    st = ProfileStore(slots=8, capacity=4)
    events = [([0], [1.0], T0), ([1], [2.0], T0 + 5 * DAY), ([0, 2], [1.0, 1.0], T0 + 2 * DAY)]
    for fv, w, t in events:
        upd(st, 0, fv, w, t)
    for fv, w, t in sorted(events, key=lambda e: e[2]):
        upd(st, 1, fv, w, t)
    now = T0 + 6 * DAY
    a, b = as_dict(st, 0, now), as_dict(st, 1, now)
    assert a.keys() == b.keys() == {0, 1, 2}
    for f in a:
        assert a[f] == pytest.approx(b[f], rel=1e-6)


def test_tiny_scores_are_freed() -> None:
    st = ProfileStore(slots=4, capacity=2)
    upd(st, 0, [0], [1.0], T0)
    upd(st, 0, [1], [1.0], T0 + 25 * H)  # 2**-25 < 1e-6: slot 0 is freed by the decay
    assert as_dict(st, 0, T0 + 25 * H) == {1: 1.0}
    assert (st.fid_[0] >= 0).sum() == 1


def test_negative_weight_lowers_but_never_below_nothing() -> None:
    st = ProfileStore(slots=4, capacity=2)
    upd(st, 0, [0, 1], [3.0, 1.0], T0)
    upd(st, 0, [0], [-1.0], T0)
    assert as_dict(st, 0, T0) == {0: 2.0, 1: 1.0}
    upd(st, 0, [1, 2], [-5.0, -1.0], T0)  # 1 drops out; 2 is never created
    assert as_dict(st, 0, T0) == {0: 2.0}


def test_slots_evict_the_least_valuable() -> None:
    st = ProfileStore(slots=2, capacity=2)
    upd(st, 0, [0, 1], [1.0, 2.0], T0)
    upd(st, 0, [2], [3.0], T0)  # full: evicts 0 (the lowest)
    assert as_dict(st, 0, T0) == {2: 3.0, 1: 2.0}
    upd(st, 0, [3], [0.5], T0)  # weaker than every slot: not kept
    assert as_dict(st, 0, T0) == {2: 3.0, 1: 2.0}
    upd(st, 0, [1], [5.0], T0)  # existing value: added in place
    assert as_dict(st, 0, T0) == {1: 7.0, 2: 3.0}


def test_read_ties_break_by_facet_value() -> None:
    st = ProfileStore(slots=4, capacity=1)
    upd(st, 0, [3, 1, 2], [1.0, 1.0, 1.0], T0)
    assert st.read(0, T0, HL)[0].tolist() == [1, 2, 3]


def test_merge_folds_affinity_purchases_activity() -> None:
    st = ProfileStore(slots=8, purchased_slots=4, capacity=4)
    upd(st, 0, [0, 1], [2.0, 1.0], T0)  # dst, older
    upd(st, 1, [1, 2], [1.0, 4.0], T0 + H)  # src, later
    st.add_purchase(0, 7)
    st.add_purchase(1, 8)
    st.add_purchase(1, 7)
    st.touch(0, T0)
    st.touch(1, T0 + H)
    st.touch(1, T0 + H)
    st.merge(0, 1, HL)
    assert st.t_[0] == T0 + H  # decayed to the later time
    assert as_dict(st, 0, T0 + H) == {2: 4.0, 1: 1.5, 0: 1.0}  # 1*0.5 + 1, 2*0.5
    assert sorted(x for x in st.purchased(0).tolist() if x >= 0) == [7, 8]
    assert st.last_seen_[0] == T0 + H and st.events_[0] == 3
    # the source row is a new profile again
    assert as_dict(st, 1, T0 + H) == {} and st.t_[1] == 0
    assert (st.purchased(1) == -1).all() and st.events_[1] == 0


def test_merge_into_an_empty_row() -> None:
    st = ProfileStore(slots=4, capacity=2)
    upd(st, 1, [0], [1.0], T0)
    st.merge(0, 1, HL)
    assert as_dict(st, 0, T0 + H) == {0: 0.5}


def test_merge_keeps_the_strongest_slots_when_over_capacity() -> None:
    st = ProfileStore(slots=2, capacity=2)
    upd(st, 0, [0, 1], [5.0, 1.0], T0)
    upd(st, 1, [2, 3], [3.0, 0.5], T0)
    st.merge(0, 1, HL)
    assert as_dict(st, 0, T0) == {0: 5.0, 2: 3.0}


def test_purchases_ring() -> None:
    st = ProfileStore(purchased_slots=3, capacity=1)
    for item in (10, 11, 11, 12):
        st.add_purchase(0, item)
    assert st.purchased(0).tolist() == [10, 11, 12]
    st.add_purchase(0, 13)  # the oldest is overwritten
    assert st.purchased(0).tolist() == [13, 11, 12]
    none = ProfileStore(purchased_slots=0, capacity=1)
    none.add_purchase(0, 5)
    assert none.purchased(0).tolist() == [-1]


def test_touch() -> None:
    st = ProfileStore(capacity=1)
    st.touch(0, T0 + 5)
    st.touch(0, T0)  # an older event does not move last-seen back
    assert st.last_seen_[0] == T0 + 5 and st.events_[0] == 2


def test_ensure_growth_preserves_rows() -> None:
    st = ProfileStore(slots=4, purchased_slots=2, capacity=2)
    upd(st, 1, [0, 5], [1.0, 2.0], T0)
    st.add_purchase(1, 9)
    st.touch(1, T0)
    before = {name: getattr(st, name)[:2].copy() for name in st._ARRAYS}
    st.ensure(2)  # no-op
    assert st.n_rows == 2
    st.ensure(9)
    assert st.n_rows == 16  # doubled: 2 -> 4 -> 8 -> 16
    for name, old in before.items():
        new = getattr(st, name)
        assert new.shape[0] == 16 and new.dtype == old.dtype
        assert np.array_equal(new[:2], old), name
    assert (st.fid_[2:] == -1).all() and (st.score_[2:] == 0).all() and (st.purchased_[2:] == -1).all()
    assert (st.t_[2:] == 0).all()
    assert as_dict(st, 1, T0) == {5: 2.0, 0: 1.0}
    upd(st, 15, [1], [1.0], T0)
    assert as_dict(st, 15, T0) == {1: 1.0}


def test_clear_and_sizes() -> None:
    st = ProfileStore(slots=4, purchased_slots=2, capacity=1)
    upd(st, 0, [0], [1.0], T0)
    st.add_purchase(0, 1)
    st.clear(0)
    assert as_dict(st, 0, T0) == {} and st.purchased(0).tolist() == [-1, -1]
    # 4 slots x (4 + 4 bytes) + t 8 + purchases 2x4 + pos 4 + last_seen 8 + events 8 + 8 recent x (4 + 8)
    # + 8 touchpoints x (8 + 1 + 1 + 4) + their ring position 2
    assert st.nbytes_per_profile() == 32 + 8 + 8 + 4 + 8 + 8 + 96 + 112 + 2


def test_the_journey_keeps_the_newest_touchpoints_through_merges() -> None:
    st = ProfileStore(slots=2, capacity=2, journey_slots=3)
    for j, (t, kind, ch, item) in enumerate([(T0 + 5, 1, 0, 7), (T0 + 1, 2, 1, -1), (T0 + 9, 3, 2, 4)]):
        st.add_touch(j % 2, t, kind, ch, item)
    assert st.journey(0) == [(T0 + 9, 3, 2, 4), (T0 + 5, 1, 0, 7)]
    st.add_touch(1, T0 + 3, 4, 0, 1)
    st.merge(0, 1, np.ones(8))
    assert st.journey(0) == [(T0 + 9, 3, 2, 4), (T0 + 5, 1, 0, 7), (T0 + 3, 4, 0, 1)]  # T0 + 1 is the oldest: gone
    assert st.journey(1) == []
    st.clear(0)
    assert st.journey(0) == []
