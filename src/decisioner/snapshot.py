"""The snapshot file format: named components' arrays and metadata, written atomically.

This module knows files, not engines: a snapshot is a mapping ``component -> (arrays,
metadata)`` that each component exports and imports itself (``to_state``/``load_state``), plus a
small header and two opaque blobs (configuration, catalog).

Layout of a durable directory::

    CURRENT                      name of the newest complete snapshot (replaced atomically)
    PREVIOUS                     name of the one before it, kept as a fallback
    snapshot-<ops>-<nonce>/      header.json (format, counters, checksums), config.json,
                                 catalog.jsonl, arrays.npz (no pickle), meta.msgpack
    events.log                   the write-ahead log since the newest snapshot
    events.prev.log              the log from the previous snapshot to the newest
    LOCK                         the advisory lock of the one writer (see eventlog)

A snapshot is written into a temporary directory, fsynced, renamed to a name no earlier save
used, and published: ``PREVIOUS`` takes the name ``CURRENT`` held, then ``CURRENT`` the new
name (each replaced atomically); only then are snapshots named by neither removed. A crash at
any point leaves a complete snapshot named by ``CURRENT``; leftovers of a crashed save
(temporary directories, unpublished snapshots) are removed by the next :func:`write_snapshot`
or :func:`clean_leftovers`. ``read_snapshot(..., previous=True)`` reads the fallback (the
engine opens it, with both logs, when the newest is damaged).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from .errors import ConfigError, NotReadyError, SnapshotDamagedError
from .eventlog import fsync_dir
from .logformat import OLD_KEYS_HINT

__all__ = [
    "SNAPSHOT_FORMAT",
    "ComponentState",
    "Snapshot",
    "write_snapshot",
    "read_snapshot",
    "read_header",
    "clean_leftovers",
]

#: 4: identifier keys are keyed BLAKE2b (issue 11; old keys cannot be converted);
#: 3: the decision log's window (oldest chunk's index, chunk fills, rows dropped and spilled)
#: and the exposures' dropped count; 2: components export their own state; people ids; typed
#: log (1: reflected engine attributes)
SNAPSHOT_FORMAT: Final = 4
_FILES: Final = ("config.json", "catalog.jsonl", "arrays.npz", "meta.msgpack")
_SEP: Final = "/"

#: what a component exports: named arrays and plain metadata (msgpack-able)
ComponentState = tuple[dict[str, np.ndarray], dict[str, Any]]


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as read back: its directory, header, configuration bytes, the catalog file,
    and each component's state."""

    path: Path
    header: dict[str, Any]
    config: bytes
    catalog_path: Path
    components: dict[str, ComponentState]


def _plain(obj: Any) -> Any:
    """msgpack hook: NumPy scalars as the Python values they hold."""
    if isinstance(obj, np.generic):
        return obj.item()
    raise NotReadyError(f"expected plain metadata in a component's state, got `{type(obj).__name__}` - at snapshot")


def _checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _current(root: Path, pointer: str = "CURRENT") -> str | None:
    try:
        return (root / pointer).read_text().strip() or None
    except FileNotFoundError:
        return None


def _publish(root: Path, pointer: str, name: str) -> None:
    """Point ``root/pointer`` at ``name`` atomically (write, fsync, rename)."""
    tmp = root / f"{pointer}.tmp"
    tmp.write_text(name)
    _fsync_file(tmp)
    os.replace(tmp, root / pointer)


def _ops_of(name: str) -> int:
    """The admission count in a snapshot's name (``snapshot-<ops>-<nonce>``), -1 if none."""
    part = name.split("-")
    return int(part[1]) if len(part) == 3 and part[1].isdigit() else -1


def clean_leftovers(root: str | Path, *, older: bool = True) -> list[str]:
    """Remove what crashed saves left under ``root``: temporary directories and files, and
    snapshots that neither ``CURRENT`` nor ``PREVIOUS`` names. Returns the names removed. Call it
    only as the directory's writer (holding its lock): another writer's save in progress looks
    the same.

    ``older=False`` keeps unnamed snapshots older than ``CURRENT`` (a reader that finds
    ``PREVIOUS`` lost must not delete what may be the fallback); a save drops them.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    live = _current(root)
    named = {live, _current(root, "PREVIOUS")}
    intact = live is not None and (root / live).is_dir()  # else no snapshot is known to be stale
    floor = _ops_of(live) if live is not None and intact and not older else -1
    removed = []
    for p in root.iterdir():
        stale = intact and p.name.startswith("snapshot-") and p.name not in named and _ops_of(p.name) >= floor
        if p.name.startswith(".tmp-snapshot-") or stale:
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p.name)
        elif p.name.endswith(".tmp") and p.is_file():  # a pointer or log file replaced half-way
            p.unlink(missing_ok=True)
            removed.append(p.name)
    return removed


def write_snapshot(
    directory: str | Path,
    *,
    ops: int,
    header: dict[str, Any],
    config: bytes,
    catalog_lines: Iterable[bytes],
    components: dict[str, ComponentState],
    keep_previous: bool = True,
) -> Path:
    """Write a snapshot atomically under ``directory`` and publish it; returns its path.

    ``ops`` is the admission count the state corresponds to (the log continues from it);
    ``header`` holds small plain values of the caller's (seed, key check, ...). The snapshot
    ``CURRENT`` named becomes ``PREVIOUS`` (the fallback); without ``keep_previous`` (the
    directory held another state) there is no fallback until the next save.
    """
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    # components by position: their names (placement names) may hold any character
    meta: dict[str, Any] = {"components": list(components), "meta": [m for _, m in components.values()]}
    for i, (arrs, _) in enumerate(components.values()):
        for name, a in arrs.items():
            arrays[f"{i}{_SEP}{name}"] = np.ascontiguousarray(a)
    name = f"snapshot-{ops:015d}-{secrets.token_hex(4)}"  # never the name of a live snapshot
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-snapshot-", dir=root))
    try:
        (tmp / "config.json").write_bytes(config)
        with open(tmp / "catalog.jsonl", "wb") as fh:
            for line in catalog_lines:
                fh.write(line + b"\n")
        np.savez(str(tmp / "arrays.npz"), **arrays)  # type: ignore[arg-type]
        (tmp / "meta.msgpack").write_bytes(msgspec.msgpack.encode(meta, enc_hook=_plain))
        head = {**header, "format": SNAPSHOT_FORMAT, "ops": ops, "checksums": {f: _checksum(tmp / f) for f in _FILES}}
        (tmp / "header.json").write_bytes(msgspec.json.encode(head))
        for f in [*_FILES, "header.json"]:
            _fsync_file(tmp / f)
        fsync_dir(tmp)
        final = root / name
        os.rename(tmp, final)
        live = _current(root)
        if not keep_previous:
            (root / "PREVIOUS").unlink(missing_ok=True)
        elif live is not None and (root / live).is_dir():
            _publish(root, "PREVIOUS", live)  # the fallback, before CURRENT moves on
        _publish(root, "CURRENT", name)
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    clean_leftovers(root)  # older snapshots are superseded only now that CURRENT names this one
    return final


def read_snapshot(directory: str | Path, *, previous: bool = False) -> Snapshot:
    """Read the snapshot ``CURRENT`` (or, with ``previous``, ``PREVIOUS``) names under
    ``directory``, checking every checksum.

    Raises
    ------
    NotReadyError
        No snapshot.
    SnapshotDamagedError
        A damaged or missing file.
    ConfigError
        A snapshot format this version cannot read.
    """
    root = Path(directory)
    pointer = "PREVIOUS" if previous else "CURRENT"
    name = _current(root, pointer)
    if name is None:
        raise NotReadyError(f"expected a snapshot in {str(root)!r} (a {pointer} file), got none")
    snap = root / name
    if (snap / "meta.json").exists() and not (snap / "header.json").exists():
        raise ConfigError(f"expected snapshot format {SNAPSHOT_FORMAT}, got 1 - at {str(snap)!r} ({OLD_KEYS_HINT})")
    try:
        head = msgspec.json.decode((snap / "header.json").read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise SnapshotDamagedError(f"expected readable snapshot metadata, got {exc} - at {str(snap)!r}") from None
    fmt = head.get("format") if isinstance(head, dict) else None
    if fmt != SNAPSHOT_FORMAT:
        old = type(fmt) is int and fmt < SNAPSHOT_FORMAT
        hint = OLD_KEYS_HINT if old else "open it with the decisioner version that wrote it"
        raise ConfigError(f"expected snapshot format {SNAPSHOT_FORMAT}, got {fmt!r} - at {str(snap)!r} ({hint})")
    sums = head.get("checksums") if isinstance(head, dict) else None
    for f in _FILES:
        digest = sums.get(f) if isinstance(sums, dict) else None
        if not (snap / f).exists() or _checksum(snap / f) != digest:
            raise SnapshotDamagedError(
                f"expected an intact snapshot file, got a damaged {f!r} (checksum mismatch) - at {str(snap)!r}"
            )
    with np.load(snap / "arrays.npz", allow_pickle=False) as data:
        flat = {k: data[k] for k in data.files}
    meta = msgspec.msgpack.decode((snap / "meta.msgpack").read_bytes())
    names: list[str] = meta["components"]
    states: list[ComponentState] = [({}, m) for m in meta["meta"]]
    for key, a in flat.items():
        i, _, name = key.partition(_SEP)
        states[int(i)][0][name] = a
    components = dict(zip(names, states))
    return Snapshot(snap, head, (snap / "config.json").read_bytes(), snap / "catalog.jsonl", components)


def read_header(directory: str | Path) -> tuple[Path, dict[str, Any]] | None:
    """The path and header of the snapshot ``CURRENT`` names under ``directory``, without reading
    or checking its other files; ``None`` when there is no snapshot.

    Raises
    ------
    NotReadyError
        If the header is missing or unreadable.
    """
    root = Path(directory)
    name = _current(root)
    if name is None:
        return None
    snap = root / name
    try:
        head = msgspec.json.decode((snap / "header.json").read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise NotReadyError(f"expected readable snapshot metadata, got {exc} - at {str(snap)!r}") from None
    if not isinstance(head, dict):
        raise NotReadyError(f"expected snapshot metadata as an object, got `{type(head).__name__}` - at {str(snap)!r}")
    return snap, head
