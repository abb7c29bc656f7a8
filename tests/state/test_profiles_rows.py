"""The row codec: one person's row leaves one engine and lands in another unchanged."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from decisioner import Engine
from decisioner.errors import NotReadyError
from decisioner.state.rowcodec import RowCodec


def _events(world: str, n: int) -> list[dict]:
    lines = Path(world, "events.jsonl").read_text().splitlines()[:n]
    return [json.loads(x) for x in lines]


def test_row_travels_between_engines_with_other_vocabularies(small_world: str) -> None:
    a = Engine.from_world(small_world)
    b = Engine.from_world(small_world)
    events = _events(small_world, 3000)
    rows = [a.track(e) for e in events]
    # b learns other attribute values first, so its codes differ from a's
    b.set_attributes({"cookie": "other"}, {"region": "zzz-first"}, source="crm", time=1_700_000_000_000)
    codec_a, codec_b = RowCodec(a), RowCodec(b)
    with_attrs = [r for r in set(rows) if a.attributes_.get(r)]
    assert with_attrs, "some person has attributes"
    row = max(with_attrs, key=rows.count)
    dst = b.identity.n_rows + 3
    b.tracker.sync_rows()
    b.profiles.ensure(dst + 1)
    b.consent.ensure(dst + 1)
    b.attributes_.ensure(dst + 1)
    b.engagement_.ensure(dst + 1)
    b.people.ensure(dst + 1)
    if b.activity_ is not None:
        b.activity_.ensure(dst + 1)
    rec = codec_b.load(dst, codec_a.encode(row))
    assert rec.person == a.people.person_of(row)
    assert b.attributes_.get(dst) == a.attributes_.get(row)
    now = events[-1]["time"]
    fa, sa = a.profiles.read(row, now, a.half_lives_)
    fb, sb = b.profiles.read(dst, now, b.half_lives_)
    np.testing.assert_array_equal(fa, fb)
    np.testing.assert_array_equal(sa, sb)
    assert int(b.consent.allow_[dst]) == int(a.consent.allow_[row])
    assert b.profiles.events_[dst] == a.profiles.events_[row]
    assert b.attributes_.row_values(dst) == a.attributes_.row_values(row)
    assert codec_b.encode(dst) == codec_a.encode(row)


def test_row_of_another_shape_is_refused_and_changes_nothing(small_world: str) -> None:
    from decisioner.config import load_config

    a = Engine.from_world(small_world)
    row = a.track(_events(small_world, 1)[0])
    cfg = load_config(Path(small_world) / "config.toml")
    import msgspec

    small = msgspec.structs.replace(cfg, profiles=msgspec.structs.replace(cfg.profiles, slots=4))
    b = Engine(small, a.catalog)
    b.track(_events(small_world, 1)[0])
    before = RowCodec(b).encode(0)
    with pytest.raises(NotReadyError, match=re.escape("Expected 16 bytes for `profiles/fid` in a row value, got 96 bytes")):
        RowCodec(b).load(0, RowCodec(a).encode(row))
    assert RowCodec(b).encode(0) == before
    with pytest.raises(NotReadyError, match=re.escape("Expected a row value of format 1, got b'junk' - at `state.rows`")):
        RowCodec(b).load(0, b"junk")
