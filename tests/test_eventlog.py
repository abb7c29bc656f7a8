"""Damage in the event log, byte by byte: a torn tail is told from damage followed by intact
records, recovery keeps and reports exactly the intact prefix, and a repair moves the rest into a
file of its own without losing a byte."""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest

from decisioner.errors import ConfigError, DecisionerWarning, LogDamagedError, LogLockedError
from decisioner.eventlog import EventLog, LogRecovery, read_log, recover_log, repair_log
from decisioner.journal import recover_records

HEADER = 12
NOW = datetime(2024, 6, 11, 12, 30, 5, tzinfo=UTC)


def rec(i: int) -> bytes:
    return b"record %d padded to a realistic size" % i + b"." * (i % 7)


def write_log(path: Path, n: int) -> list[int]:
    """A log of ``n`` records; returns each record's offset and, last, the file size."""
    log = EventLog(path)
    for i in range(n):
        log.append(rec(i))
    log.close()
    offsets = [HEADER]
    for i in range(n):
        offsets.append(offsets[-1] + 8 + len(rec(i)))
    assert offsets[-1] == path.stat().st_size
    return offsets


def record_at(offsets: list[int], pos: int) -> int:
    """Index of the record holding byte ``pos``."""
    return max(i for i in range(len(offsets) - 1) if offsets[i] <= pos)


def torn_warning(path: Path, at: int, problem: str, kept: int, dropped: int, *, cut: bool = True) -> str:
    tail = "cut" if cut else "left out"
    return (
        f"event log {str(path)!r} ends in a torn write at byte {at} ({problem}): kept the {kept} records before it "
        f"({at} bytes) and {tail} the {dropped} bytes after them{'' if cut else ' (the file is unchanged)'}"
    )


def damaged_error(path: Path, at: int, problem: str, after: int, after_bytes: int, dropped: int, kept: int) -> str:
    return (
        f"expected an event log whose records are intact up to its end, got damage at byte {at} ({problem}) "
        f"followed by {after} intact records ({after_bytes} of the {dropped} bytes after it) - at {str(path)!r} "
        f"(nothing was cut or changed: `decisioner log check {path}` shows the damage, `decisioner log repair "
        f"{path}` keeps the {kept} records before it and moves the rest into a file of its own)"
    )


def test_a_whole_log_scans_as_whole(tmp_path: Path) -> None:
    offsets = write_log(tmp_path / "events.log", 6)
    scan = read_log(tmp_path / "events.log")
    assert (scan.kind, scan.problem, scan.damage_at, scan.dropped_bytes) == ("none", None, None, 0)
    assert scan.good_bytes == scan.size == offsets[-1] and len(scan.payloads) == 6


def test_every_truncation_is_a_torn_tail_keeping_the_whole_records(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 8)
    full = path.read_bytes()
    for cut in range(len(full) + 1):
        path.write_bytes(full[:cut])
        scan = read_log(path)
        whole = [i for i in range(8) if offsets[i + 1] <= cut]
        assert scan.payloads == [rec(i) for i in whole], cut
        if cut == 0 or cut in offsets:
            assert scan.kind == "none" and scan.problem is None, cut
        else:
            assert scan.kind == "torn_tail", cut
            assert scan.good_bytes == (offsets[len(whole)] if cut >= HEADER else 0)
            assert scan.intact_after == 0 and scan.resync_at is None


def test_every_flipped_byte_is_found_and_classified_by_what_follows(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 8)
    full = path.read_bytes()
    for pos in range(len(full)):
        for xor in (0x01, 0x80, 0xFF):
            data = bytearray(full)
            data[pos] ^= xor
            path.write_bytes(bytes(data))
            if pos < HEADER:  # the file header: not a log of this format, refused before anything
                with pytest.raises(ConfigError):
                    read_log(path)
                continue
            scan = read_log(path)
            i = record_at(offsets, pos)
            assert scan.payloads == [rec(j) for j in range(i)], (pos, xor)
            assert scan.good_bytes == offsets[i]
            if i == 7:  # the last record: a torn tail
                assert (scan.kind, scan.intact_after, scan.resync_at) == ("torn_tail", 0, None), (pos, xor)
            else:
                assert scan.kind == "damaged", (pos, xor)
                assert scan.intact_after == 7 - i and scan.resync_at == offsets[i + 1], (pos, xor)
                assert scan.intact_after_bytes == offsets[-1] - offsets[i + 1]


def test_zeros_at_the_end_are_a_torn_tail_and_a_zeroed_hole_is_damage(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 5)
    full = path.read_bytes()
    path.write_bytes(full + bytes(4096))  # what a power loss can leave after the last write
    scan = read_log(path)
    assert (scan.kind, len(scan.payloads), scan.problem) == ("torn_tail", 5, "corrupt record length 0")
    hole = bytearray(full)
    hole[offsets[1] : offsets[3]] = bytes(offsets[3] - offsets[1])
    path.write_bytes(bytes(hole))
    scan = read_log(path)
    assert (scan.kind, len(scan.payloads), scan.intact_after, scan.resync_at) == ("damaged", 1, 2, offsets[3])


def test_intact_records_after_two_damages_are_all_counted(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 10)
    data = bytearray(path.read_bytes())
    data[offsets[2] + 12] ^= 0x10
    data[offsets[6] + 3] ^= 0x10  # a length field
    path.write_bytes(bytes(data))
    scan = read_log(path)
    assert (scan.kind, len(scan.payloads), scan.resync_at) == ("damaged", 2, offsets[3])
    assert scan.intact_after == 6  # records 3, 4, 5, 7, 8, 9


def test_empty_records_are_refused(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "events.log")
    with pytest.raises(ConfigError, match="^" + re.escape(
        f"expected a record payload of at least 1 byte, got 0 - at {str(tmp_path / 'events.log')!r}"
    ) + "$"):
        log.append(b"")
    log.close()
    assert read_log(tmp_path / "events.log").size == HEADER


def test_opening_cuts_a_torn_tail_with_a_warning_saying_what_it_kept_and_dropped(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 4)
    full = path.read_bytes()
    path.write_bytes(full[:-5])
    msg = torn_warning(path, offsets[3], f"truncated record, {len(rec(3)) - 5} of {len(rec(3))} bytes", 3,
                       offsets[4] - 5 - offsets[3])
    with pytest.warns(DecisionerWarning, match="^" + re.escape(msg) + "$"):
        log = EventLog(path)
    assert log.recovery_ == LogRecovery(str(path), 3, offsets[3], offsets[4] - 5 - offsets[3],
                                        f"truncated record, {len(rec(3)) - 5} of {len(rec(3))} bytes")
    log.close()
    assert path.read_bytes() == full[: offsets[3]]


def test_a_bad_crc_on_the_last_record_is_cut_with_the_crc_named(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 4)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    msg = torn_warning(path, offsets[3], "corrupt record, CRC mismatch", 3, offsets[4] - offsets[3])
    with pytest.warns(DecisionerWarning, match="^" + re.escape(msg) + "$"):
        EventLog(path).close()
    assert path.read_bytes() == bytes(data[: offsets[3]])


def test_a_truncated_file_header_is_cut_to_a_fresh_log(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    write_log(path, 1)
    path.write_bytes(path.read_bytes()[:5])
    with pytest.warns(DecisionerWarning, match="^" + re.escape(torn_warning(path, 0, "truncated header, 5 of 12 bytes", 0, 5)) + "$"):
        log = EventLog(path)
    log.append(rec(0))
    log.close()
    assert read_log(path).payloads == [rec(0)]


def test_opening_refuses_damage_followed_by_intact_records_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 6)
    data = bytearray(path.read_bytes())
    data[offsets[2] + 9] ^= 0x04  # inside the third record's payload
    path.write_bytes(bytes(data))
    msg = damaged_error(path, offsets[2], "corrupt record, CRC mismatch", 3, offsets[6] - offsets[3],
                        offsets[6] - offsets[2], 2)
    for _ in range(2):  # the failed open left no lock behind: the same happens again
        with pytest.raises(LogDamagedError, match="^" + re.escape(msg) + "$"):
            EventLog(path)
        assert path.read_bytes() == bytes(data)
    with pytest.raises(LogDamagedError, match="^" + re.escape(msg) + "$"):
        recover_records(path)  # the read-only recovery (flush="off") refuses alike
    assert path.read_bytes() == bytes(data)


def test_read_only_recovery_leaves_a_torn_tail_in_the_file_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 3)
    torn = path.read_bytes() + b"\x30\x00\x00\x00\x01\x02"
    path.write_bytes(torn)
    msg = torn_warning(path, offsets[3], "truncated record header, 6 of 8 bytes", 3, 6, cut=False)
    with pytest.warns(DecisionerWarning, match="^" + re.escape(msg) + "$"):
        scan, report = recover_log(path, cut=False)
    assert report == LogRecovery(str(path), 3, offsets[3], 6, "truncated record header, 6 of 8 bytes")
    assert path.read_bytes() == torn and len(scan.payloads) == 3


def test_a_missing_log_recovers_nothing_and_says_it_was_missing(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scan, report = recover_log(tmp_path / "events.log", cut=False)
    assert scan.payloads == [] and report == LogRecovery(str(tmp_path / "events.log"), 0, 0, 0, None, missing=True)
    assert not (tmp_path / "events.log").exists()


def test_repair_keeps_the_prefix_in_place_and_moves_exactly_the_rest_aside(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    offsets = write_log(path, 6)
    data = bytearray(path.read_bytes())
    data[offsets[1] + 20] ^= 0x40
    path.write_bytes(bytes(data))
    r = repair_log(path, now=NOW)
    side = tmp_path / "events.log.damaged-20240611T123005Z"
    assert (r.kind, r.kept_records, r.kept_bytes, r.moved_intact_records) == ("damaged", 1, offsets[1], 4)
    assert r.moved_bytes == len(data) - offsets[1] and r.moved_to == str(side)
    assert path.read_bytes() == bytes(data[: offsets[1]])
    assert side.read_bytes() == bytes(data[offsets[1] :])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the repaired log opens with no warning, and goes on
        log = EventLog(path)
    log.append(rec(9))
    log.close()
    assert read_log(path).payloads == [rec(0), rec(9)]
    # a second repair in the same second never overwrites the first one's file
    path.write_bytes(path.read_bytes() + b"\x01\x02\x03")
    r2 = repair_log(path, now=NOW)
    assert r2.moved_to == str(tmp_path / "events.log.damaged-20240611T123005Z-1")
    assert Path(r2.moved_to).read_bytes() == b"\x01\x02\x03"
    assert side.read_bytes() == bytes(data[offsets[1] :])


def test_repair_leaves_a_whole_log_alone_and_rebuilds_a_torn_file_header(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    write_log(path, 3)
    before = path.read_bytes()
    r = repair_log(path, now=NOW)
    assert (r.kind, r.moved_to, r.kept_records, r.moved_bytes) == ("none", None, 3, 0)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["LOCK", "events.log"]
    path.write_bytes(before[:7])
    r = repair_log(path, now=NOW)
    assert (r.kind, r.kept_records, r.moved_bytes) == ("torn_tail", 0, 7)
    assert path.read_bytes() == before[:HEADER] and Path(str(r.moved_to)).read_bytes() == before[:7]


def test_repair_refuses_a_log_an_engine_has_open(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(path)
    log.append(rec(0))
    with pytest.raises(LogLockedError, match="^" + re.escape(
        f"expected no writer of {str(path)!r}, got an open event log in this process - at `repair_log` "
        "(detach the engine's log first)"
    ) + "$"):
        repair_log(path)
    log.close()
    assert repair_log(path).kind == "none"


def test_repair_refuses_what_is_not_a_log(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    path.write_bytes(b"NOTALOG!" + bytes(20))
    with pytest.raises(ConfigError):
        repair_log(path)
    assert path.read_bytes() == b"NOTALOG!" + bytes(20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["LOCK", "events.log"]
