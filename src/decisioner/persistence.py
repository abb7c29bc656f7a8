"""Durability: an append-only event log (write-ahead) and atomic snapshots.

Event log format (``events.log``), little-endian:

* file header: ``b"DCSNWAL1"`` then ``u32`` format version;
* record: ``u32`` payload length, ``u32`` CRC-32 of the payload, payload (msgpack
  :class:`LogRecord`: admission sequence number, operation, placement, JSON body). An event's
  identifier values are replaced by their keyed hashes (key and check-tag word, 32 hex
  digits): the log never holds a raw identifier, and replay links the same keys.

Every accepted state change is appended, in the order the engine admitted it, before the call
returns. Recovery loads the last snapshot and replays the records whose admission number is at
or past the snapshot's; a truncated or corrupt record at the tail is detected (length or CRC),
reported, and cut off, and every record before it is kept.

Flush policies (what survives):

* ``"event"``: one ``write(2)`` per record before the call returns. The record is in the
  operating system's page cache, so it survives a crash or kill of the process; with
  ``fsync=True`` each record is also forced to the device before returning, so it survives a
  power loss or kernel crash (at the cost of one device flush per call).
* ``"interval"``: records are buffered in the process and written every ``interval_ms`` (and on
  close). A process crash loses at most the records of the last interval; with ``fsync=True``
  a power loss loses at most the same.
* ``"off"``: no log; only what the last snapshot holds survives anything.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

import msgspec
import numpy as np

from .errors import ConfigError, DecisionerWarning, NotReadyError

if TYPE_CHECKING:
    from .engine import Engine

__all__ = [
    "LOG_MAGIC",
    "LOG_VERSION",
    "LogRecord",
    "EventLog",
    "LogScan",
    "read_log",
    "FlushPolicy",
    "SNAPSHOT_FORMAT",
    "save_snapshot",
    "load_snapshot",
    "engine_state",
]

LOG_MAGIC: Final = b"DCSNWAL1"
#: 2: events carry keyed hashes of their identifiers (1 carried the raw values)
LOG_VERSION: Final = 2
_HEADER: Final = struct.Struct("<8sI")
_REC: Final = struct.Struct("<II")
#: a record larger than this is corrupt by definition (events are capped far below it)
MAX_RECORD_BYTES: Final = 64 * 1024 * 1024

FlushPolicy = Literal["event", "interval", "off"]


class LogRecord(msgspec.Struct, array_like=True, frozen=True):
    """One admitted operation: ``op`` is ``track``, ``decide``, ``observe`` or an admin
    operation; ``body`` is the JSON of the event or outcome as admitted."""

    seq: int
    op: str
    placement: str | None
    body: bytes


_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder(LogRecord)


@dataclass(frozen=True)
class LogScan:
    """Result of reading a log: the good records, where they end, and what was wrong after."""

    records: list[LogRecord]
    good_bytes: int
    problem: str | None


def read_log(path: str | Path) -> LogScan:
    """Read every intact record of a log file; stop at the first truncated or corrupt one.

    Raises
    ------
    ConfigError
        If the file is not an event log or has an unknown format version.
    """
    data = Path(path).read_bytes()
    if len(data) < _HEADER.size:
        if len(data) == 0:
            return LogScan([], 0, None)
        return LogScan([], 0, f"truncated header ({len(data)} of {_HEADER.size} bytes)")
    magic, version = _HEADER.unpack_from(data, 0)
    if magic != LOG_MAGIC:
        raise ConfigError(f"expected an event log starting with {LOG_MAGIC!r}, got {magic!r} - at {str(path)!r}")
    if version != LOG_VERSION:
        raise ConfigError(
            f"expected event log format version {LOG_VERSION}, got {version} - at {str(path)!r} "
            "(replay it with the decisioner version that wrote it, then snapshot)"
        )
    pos = _HEADER.size
    records: list[LogRecord] = []
    problem = None
    n = len(data)
    while pos < n:
        if n - pos < _REC.size:
            problem = f"truncated record header at byte {pos} ({n - pos} bytes)"
            break
        length, crc = _REC.unpack_from(data, pos)
        start = pos + _REC.size
        if length > MAX_RECORD_BYTES:
            problem = f"corrupt record length {length} at byte {pos}"
            break
        if start + length > n:
            problem = f"truncated record at byte {pos} ({n - start} of {length} bytes)"
            break
        payload = data[start : start + length]
        if zlib.crc32(payload) != crc:
            problem = f"corrupt record at byte {pos} (CRC mismatch)"
            break
        try:
            records.append(_dec.decode(payload))
        except msgspec.DecodeError:
            problem = f"undecodable record at byte {pos}"
            break
        pos = start + length
    return LogScan(records, pos, problem)


class EventLog:
    """Append-only event log with a flush policy.

    Parameters
    ----------
    path
        Log file; created with a header if missing. An existing file is scanned: a damaged
        tail is cut off (reported with a :class:`DecisionerWarning`) before new records go after
        the last good one.
    flush
        ``"event"`` or ``"interval"`` (see the module docstring for what each survives).
    fsync
        Force records to the device (power-loss durability) when they are written.
    interval_ms
        Write period of the ``"interval"`` policy.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        flush: FlushPolicy = "event",
        fsync: bool = False,
        interval_ms: float = 100.0,
    ) -> None:
        if flush not in ("event", "interval"):
            raise ConfigError(f"`flush` must be 'event' or 'interval', got {flush!r}")
        if not interval_ms > 0:
            raise ConfigError(f"`interval_ms` must be > 0, got {interval_ms!r}")
        self.path = Path(path)
        self.flush = flush
        self.fsync = fsync
        self.interval_ms = interval_ms
        self.records_ = 0
        self.bytes_ = 0
        self.recovered_problem_: str | None = None
        self._lock = threading.Lock()
        self._buf: list[bytes] = []
        self._closed = False
        self._fd = self._open()
        self._flusher: threading.Thread | None = None
        self._stop = threading.Event()
        if flush == "interval":
            self._flusher = threading.Thread(target=self._flush_loop, name="decisioner-log-flush", daemon=True)
            self._flusher.start()

    def _open(self) -> int:
        if self.path.exists() and self.path.stat().st_size > 0:
            scan = read_log(self.path)
            if scan.problem is not None:
                import warnings

                self.recovered_problem_ = scan.problem
                warnings.warn(
                    f"event log {str(self.path)!r}: {scan.problem}; cut off after "
                    f"{len(scan.records)} good records", DecisionerWarning, stacklevel=3,
                )
                with open(self.path, "r+b") as fh:
                    fh.truncate(max(scan.good_bytes, _HEADER.size) if scan.good_bytes else 0)
            self.records_ = len(scan.records)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if os.fstat(fd).st_size == 0:
            os.write(fd, _HEADER.pack(LOG_MAGIC, LOG_VERSION))
            if self.fsync:
                os.fsync(fd)
        return fd

    def append(self, record: LogRecord) -> None:
        """Append one record according to the flush policy."""
        payload = _enc.encode(record)
        frame = _REC.pack(len(payload), zlib.crc32(payload)) + payload
        with self._lock:
            if self._closed:
                raise NotReadyError(f"the event log {str(self.path)!r} is closed")
            if self.flush == "event":
                self._write(frame)
            else:
                self._buf.append(frame)
            self.records_ += 1
            self.bytes_ += len(frame)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        if self.fsync:
            os.fsync(self._fd)

    def flush_now(self) -> None:
        """Write buffered records (``"interval"`` policy) now."""
        with self._lock:
            if self._buf and not self._closed:
                data = b"".join(self._buf)
                self._buf.clear()
                self._write(data)

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.interval_ms / 1000.0):
            self.flush_now()

    def close(self) -> None:
        """Flush and close; further appends raise :class:`NotReadyError`."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join()
        self.flush_now()
        with self._lock:
            if not self._closed:
                self._closed = True
                os.close(self._fd)

    def reset(self) -> None:
        """Start an empty log (after a snapshot has taken everything in it)."""
        with self._lock:
            self._buf.clear()
            tmp = self.path.with_suffix(".tmp")
            with open(tmp, "wb") as fh:
                fh.write(_HEADER.pack(LOG_MAGIC, LOG_VERSION))
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            os.close(self._fd)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self.records_ = 0
            self.bytes_ = 0

    def __iter__(self) -> Iterator[LogRecord]:
        self.flush_now()
        return iter(read_log(self.path).records)


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable (POSIX)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


# ============================================================================ snapshots
#
# Layout of a durable directory:
#   CURRENT                    name of the newest complete snapshot (replaced atomically)
#   snapshot-<ops>/            meta.json (format, counters, checksums), config.json (without the
#                              secret), catalog.jsonl, arrays.npz (no pickle), values.msgpack
#   events.log                 the write-ahead log since that snapshot
#
# A snapshot is written into a temporary directory, fsynced, then renamed into place and
# published by replacing CURRENT: a crash at any point leaves the previous snapshot intact.

SNAPSHOT_FORMAT: Final = 1
LOG_NAME: Final = "events.log"
_KEY_CHECK: Final = ("decisioner-snapshot-key-check", "v1")

_PLAIN = (int, float, str, bool, type(None))


def _plain(v: object) -> bool:
    if isinstance(v, _PLAIN):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def _learned(obj: object, prefix: str, arrays: dict[str, np.ndarray], values: dict[str, Any], depth: int = 0) -> None:
    """Collect an object's learned state: public attributes ending in ``_`` (STYLE's rule),
    arrays and plain values, recursing into objects held that way."""
    for name, v in vars(obj).items():
        if name.startswith("_") or not name.endswith("_"):
            continue
        key = f"{prefix}.{name}"
        if isinstance(v, np.ndarray):
            arrays[key] = v
        elif isinstance(v, np.generic):
            values[key] = v.item()
        elif _plain(v):
            values[key] = v
        elif hasattr(v, "__dict__") and depth < 4:
            _learned(v, key, arrays, values, depth + 1)
        else:
            raise NotReadyError(f"cannot snapshot `{key}` of type {type(v).__name__}: expected arrays or plain values")


def _placement_state(pl: Any, prefix: str, arrays: dict[str, np.ndarray], values: dict[str, Any]) -> None:
    for name in ("mask", "extra", "trials", "clicks"):
        arrays[f"{prefix}.{name}"] = getattr(pl, name)
    for name in ("slate", "bandit"):
        obj = getattr(pl, name, None)
        if obj is not None:
            _learned(obj, f"{prefix}.{name}", arrays, values)
    for j, v in enumerate(getattr(pl, "variants", None) or []):
        _placement_state(v, f"{prefix}.variants.{j}", arrays, values)
    if getattr(pl, "holdout", None) is not None:
        _placement_state(pl.holdout, f"{prefix}.holdout", arrays, values)


def _resolve(root: Any, path: str) -> tuple[Any, str]:
    """The object holding the last attribute of a dotted ``path`` and that attribute's name."""
    parts = path.split(".")
    obj = root
    for p in parts[:-1]:
        if p.isdigit():
            obj = obj[int(p)]
        elif isinstance(obj, dict):
            obj = obj[p]
        else:
            obj = getattr(obj, p)
    return obj, parts[-1]


def engine_state(engine: Engine) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every piece of mutable engine state as ``(arrays, plain values)`` keyed by dotted path."""
    arrays: dict[str, np.ndarray] = {}
    values: dict[str, Any] = {}
    _learned(engine, "engine", arrays, values)
    _learned(engine.profiles, "profiles", arrays, values)
    _learned(engine.scorer, "scorer", arrays, values)
    for k, a in engine.identity.to_arrays().items():
        arrays[f"identity:{k}"] = a
    for k, a in engine.decision_log.to_dict().items():
        arrays[f"decision_log:{k}"] = a
    arrays["catalog.inventory"] = engine.catalog.inventory
    for name in engine.placements:
        _placement_state(engine.placement(name), f"placements.{name}", arrays, values)
    pending = list(engine._pending.items())
    values["pending"] = [[k, *v] for k, v in pending]
    return arrays, values


def _checksum(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def save_snapshot(engine: Engine, directory: str | Path) -> Path:
    """Write the engine's whole state atomically under ``directory`` and publish it.

    Returns the snapshot's directory. Call under the engine's writer lock (``Engine.save``
    does), so the state and the log position agree.
    """
    from .hashing import hash_unit

    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    arrays, values = engine_state(engine)
    name = f"snapshot-{engine.ops_:015d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-snapshot-", dir=root))
    try:
        cfg = msgspec.structs.replace(
            engine.config, identity=msgspec.structs.replace(engine.config.identity, hash_key=None)
        )
        (tmp / "config.json").write_bytes(msgspec.json.encode(cfg))
        with open(tmp / "catalog.jsonl", "wb") as fh:
            enc = msgspec.json.Encoder()
            for rec in engine.catalog.records:
                fh.write(enc.encode(rec) + b"\n")
        np.savez(str(tmp / "arrays.npz"), **arrays)  # type: ignore[arg-type]
        (tmp / "values.msgpack").write_bytes(msgspec.msgpack.encode(values))
        files = ["config.json", "catalog.jsonl", "arrays.npz", "values.msgpack"]
        meta = {
            "format": SNAPSHOT_FORMAT,
            "ops": engine.ops_,
            "seed": engine.seed,
            "instance": engine.instance,
            "catalog_version": engine.catalog.version,
            "key_check": hash_unit(engine.identity.key, *_KEY_CHECK),
            "checksums": {f: _checksum(tmp / f) for f in files},
        }
        (tmp / "meta.json").write_bytes(msgspec.json.encode(meta))
        for f in [*files, "meta.json"]:
            with open(tmp / f, "rb") as fh:
                os.fsync(fh.fileno())
        fsync_dir(tmp)
        final = root / name
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        cur = root / "CURRENT.tmp"
        cur.write_text(name)
        with open(cur, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(cur, root / "CURRENT")
        fsync_dir(root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    for old in root.glob("snapshot-*"):  # older snapshots are superseded
        if old.name != name:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_snapshot(directory: str | Path, *, hash_key: str | None = None, **engine_kwargs: Any) -> Engine:
    """Rebuild an engine from the snapshot ``CURRENT`` names under ``directory``.

    The secret is not stored: it comes from ``hash_key`` (hex) or the environment variable the
    saved configuration names, and is checked against the snapshot's key fingerprint.

    Raises
    ------
    NotReadyError
        No snapshot, a damaged file (checksum), a wrong secret.
    ConfigError
        A snapshot format this version cannot read.
    """
    from .catalog import Catalog
    from .config import EngineConfig
    from .engine import Engine
    from .hashing import hash_unit, resolve_key

    root = Path(directory)
    try:
        name = (root / "CURRENT").read_text().strip()
    except FileNotFoundError:
        raise NotReadyError(f"expected a snapshot in {str(root)!r} (a CURRENT file), got none") from None
    snap = root / name
    try:
        meta = msgspec.json.decode((snap / "meta.json").read_bytes())
    except (OSError, msgspec.DecodeError) as exc:
        raise NotReadyError(f"unreadable snapshot metadata in {str(snap)!r}: {exc}") from None
    fmt = meta.get("format")
    if fmt != SNAPSHOT_FORMAT:
        raise ConfigError(
            f"expected snapshot format {SNAPSHOT_FORMAT}, got {fmt!r} - at {str(snap)!r} "
            "(open it with the decisioner version that wrote it and replay its log into a new engine)"
        )
    for f, digest in meta["checksums"].items():
        if _checksum(snap / f) != digest:
            raise NotReadyError(f"snapshot file {f!r} in {str(snap)!r} is damaged (checksum mismatch)")
    cfg = msgspec.json.decode((snap / "config.json").read_bytes(), type=EngineConfig)
    if hash_key is not None:
        cfg = msgspec.structs.replace(cfg, identity=msgspec.structs.replace(cfg.identity, hash_key=hash_key))
    key = resolve_key(cfg.identity.hash_key, cfg.identity.hash_key_env)
    if hash_unit(key, *_KEY_CHECK) != meta["key_check"]:
        raise NotReadyError(f"the hashing secret does not match the one snapshot {str(snap)!r} was written with")
    catalog = Catalog.from_jsonl(snap / "catalog.jsonl", cfg.catalog)
    kwargs = {"seed": meta["seed"], "instance": meta["instance"], **engine_kwargs}
    engine = Engine(cfg, catalog, **kwargs)
    with np.load(snap / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    values = msgspec.msgpack.decode((snap / "values.msgpack").read_bytes())
    _restore(engine, arrays, values, key)
    return engine


def _restore(engine: Engine, arrays: dict[str, np.ndarray], values: dict[str, Any], key: bytes) -> None:
    from .identity import IdentityGraph

    ident = {k.split(":", 1)[1]: a for k, a in arrays.items() if k.startswith("identity:")}
    loaded = IdentityGraph.from_arrays(key, ident, spec=engine.config.identity)
    for name, v in vars(loaded).items():
        if isinstance(v, list) and v and all(callable(x) for x in v):
            continue  # keep the engine's listeners
        if isinstance(v, list) and not v and "listener" in name:
            continue
        setattr(engine.identity, name, v)
    engine.decision_log.load_dict({k.split(":", 1)[1]: a for k, a in arrays.items() if k.startswith("decision_log:")})
    roots = {"engine": engine, "profiles": engine.profiles, "scorer": engine.scorer, "catalog": engine.catalog}
    for path, a in arrays.items():
        if ":" in path:
            continue
        head, _, rest = path.partition(".")
        if head == "placements":
            pname, _, sub = rest.partition(".")
            obj, attr = _resolve(engine.placement(pname), sub)
        else:
            obj, attr = _resolve(roots[head], rest)
        setattr(obj, attr, np.array(a))
    for path, v in values.items():
        if path == "pending":
            continue
        head, _, rest = path.partition(".")
        if head == "placements":
            pname, _, sub = rest.partition(".")
            obj, attr = _resolve(engine.placement(pname), sub)
        else:
            obj, attr = _resolve(roots[head], rest)
        setattr(obj, attr, tuple(v) if isinstance(getattr(obj, attr, None), tuple) else v)
    engine._pending.clear()
    for k, *rest in values["pending"]:
        engine._pending[k] = tuple(rest)
    engine._in_stock = engine.catalog.in_stock()
    engine.scorer.mark_dirty()
