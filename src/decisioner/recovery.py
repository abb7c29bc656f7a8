"""Recovery of a durable directory's event log: the rule that a snapshot continued by a log needs
that log, and the checks and repairs behind ``decisioner log check`` and ``decisioner log repair``.

A snapshot written while its engine logs into the same directory names that log in its header
(``"log": "events.log"``, :func:`log_marker`): every operation admitted after the snapshot lives
only in the log, so opening the directory without it is an error (:func:`require_log`), never
an empty log. Snapshots without the key (written before it existed, or by an engine that logs
elsewhere or not at all) expect no log.

What recovery does with a damaged log is the event log's rule (:mod:`decisioner.eventlog`): a
torn tail is cut with a warning, damage followed by intact records stops recovery with
:class:`~decisioner.errors.LogDamagedError` and changes nothing. :func:`check_log` reports what
is damaged; :func:`repair` keeps the intact prefix in place and moves the rest into a file of
its own (or, for a log the snapshot expects but that is gone, starts an empty one: the operations
it held are lost, and the repair is the explicit decision to go on without them).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Final

from .errors import LogDamagedError
from .eventlog import EventLog, read_log, repair_log
from .persistence import LOG_NAME
from .snapshot import read_header

__all__ = ["LOG_KEY", "log_marker", "require_log", "check_log", "repair"]

#: the snapshot header key naming the log that continues the snapshot
LOG_KEY: Final = "log"


def log_marker(directory: str | Path, log: EventLog | None) -> dict[str, str]:
    """The snapshot header entry for a snapshot written into ``directory`` by an engine whose
    log is ``log``: ``{"log": "events.log"}`` when that log is the directory's, else nothing."""
    if log is not None and log.path.resolve() == (Path(directory) / LOG_NAME).resolve():
        return {LOG_KEY: LOG_NAME}
    return {}


def _missing_message(directory: Path, snapshot: Path, name: str) -> str:
    return (
        f"expected the event log {name!r} that continues snapshot {snapshot.name!r}, got no such file - at "
        f"{str(directory)!r} (nothing was changed; restore the file, or accept losing every operation logged "
        f"after the snapshot with `decisioner log repair {shlex.quote(str(directory))}`, which starts an empty log)"
    )


def require_log(directory: str | Path, header: dict[str, Any], *, snapshot: str | Path | None = None) -> None:
    """Refuse to recover from a snapshot whose log is gone.

    ``header`` is the snapshot's header (``Restored.header``); ``snapshot`` its path, named in
    the message.

    Raises
    ------
    LogDamagedError
        If the header names a log that continues the snapshot and the file is missing.
    """
    name = header.get(LOG_KEY)
    if name is not None and not (Path(directory) / str(name)).exists():
        if snapshot is None:
            found = read_header(directory)
            snapshot = found[0] if found is not None else Path(directory) / "CURRENT"
        snap = Path(snapshot)
        raise LogDamagedError(_missing_message(Path(directory), snap, str(name)))


def _target(target: str | Path) -> tuple[Path, Path | None, str | None]:
    """The log file to look at, and for a directory the snapshot there and the log it expects."""
    t = Path(target)
    if not t.is_dir():
        return t, None, None
    found = read_header(t)
    if found is None:
        return t / LOG_NAME, None, None
    snap, head = found
    name = head.get(LOG_KEY)
    return t / (str(name) if name is not None else LOG_NAME), snap, None if name is None else str(name)


def check_log(target: str | Path) -> dict[str, Any]:
    """What is wrong with a log, and what an engine opening it would do; changes nothing.

    ``target`` is a log file or a durable directory (its ``events.log``, and whether its snapshot
    expects one). ``kind`` is ``"none"`` (healthy), ``"torn_tail"`` (opening cuts the torn bytes
    with a warning), ``"damaged"`` (opening refuses: intact records follow the damage) or
    ``"missing"`` (the snapshot expects a log that is not there).

    Raises
    ------
    FileNotFoundError
        If ``target`` is a file path where there is no file.
    ConfigError
        If the file is not an event log of this format version.
    """
    log, snap, expected = _target(target)
    out: dict[str, Any] = {
        "path": str(log),
        "snapshot": None if snap is None else str(snap),
        "expected_by_snapshot": expected is not None,
    }
    if not log.exists():
        if snap is None and not Path(target).is_dir():
            raise FileNotFoundError(f"no event log at {str(log)!r}")
        missing = expected is not None
        return {
            **out, "exists": False, "healthy": not missing, "kind": "missing" if missing else "none",
            "records": 0, "intact_bytes": 0, "size": 0, "damage_at": None, "problem": None,
            "bytes_after": 0, "intact_records_after": 0, "intact_bytes_after": 0,
        }
    scan = read_log(log)
    return {
        **out, "exists": True, "healthy": scan.kind == "none", "kind": scan.kind,
        "records": len(scan.payloads), "intact_bytes": scan.good_bytes, "size": scan.size,
        "damage_at": scan.damage_at, "problem": scan.problem, "bytes_after": scan.dropped_bytes,
        "intact_records_after": scan.intact_after, "intact_bytes_after": scan.intact_after_bytes,
    }


def repair(target: str | Path) -> dict[str, Any]:
    """Repair a log (:func:`~decisioner.eventlog.repair_log`): keep its intact prefix in place,
    move everything from the damage on into ``<log>.damaged-<UTC time>`` next to it. For a
    directory whose snapshot expects a log that is missing, start an empty log (``created``).

    Raises
    ------
    LogLockedError
        If an engine has the log open.
    FileNotFoundError
        If ``target`` is a file path where there is no file.
    ConfigError
        If the file is not an event log of this format version.
    """
    log, _, expected = _target(target)
    if not log.exists() and Path(target).is_dir():
        created = expected is not None
        if created:
            EventLog(log, fsync=True).close()
        return {
            "path": str(log), "kind": "missing" if created else "none", "problem": None, "created": created,
            "kept_records": 0, "kept_bytes": 0, "moved_bytes": 0, "moved_intact_records": 0, "moved_to": None,
        }
    r = repair_log(log)
    return {
        "path": r.path, "kind": r.kind, "problem": r.problem, "created": False,
        "kept_records": r.kept_records, "kept_bytes": r.kept_bytes, "moved_bytes": r.moved_bytes,
        "moved_intact_records": r.moved_intact_records, "moved_to": r.moved_to,
    }
