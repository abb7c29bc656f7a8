"""Where shared workers write their decisions and exposures: a Redis Stream or local files.

Every worker still keeps its own embedded :class:`~decisioner.decisionlog.DecisionLog` (outcomes
are joined by the worker that decided, see the README); this module also sends each decision, as
one msgpack value of :class:`~decisioner.schemas.Decision`'s fields, to a destination every
process can read:

* ``redis``: ``XADD {<prefix>:log}:decisions * d <value>`` (``MAXLEN ~ max_len`` when bounded), in
  the pipeline of the next counter sync (so at most one sync period is lost if a worker dies);
  read back with :func:`read_stream`.
* ``files``: one JSON line per decision appended to ``<dir>/decisions-<worker>.jsonl``, written
  at each sync (flushed to the OS; ``fsync`` only with ``fsync=True``).

Consent changes go the same way (``{<prefix>:log}:consent`` or ``consent-<worker>.jsonl``), one
entry per changed purpose x channel cell as :meth:`~decisioner.consent.store.ConsentStore.history_of`
spells it, so the history of a person served by several workers is in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import msgspec

from ..errors import ConfigError
from ..schemas import Decision

if TYPE_CHECKING:
    from .connection import RedisState

__all__ = ["DecisionStream", "read_consent", "read_stream"]

_ENC: Final = msgspec.msgpack.Encoder()
_JSON: Final = msgspec.json.Encoder()
_DEC: Final = msgspec.msgpack.Decoder(Decision)


class DecisionStream:
    """Buffered decisions of one worker, written at each :meth:`flush`.

    Parameters
    ----------
    kind
        ``"redis"`` (a Stream) or ``"files"`` (JSON lines per worker) or ``"off"``.
    state
        The connection (``kind="redis"``).
    directory
        Directory of the files (``kind="files"``).
    worker
        The worker's name (the file name's suffix).
    max_len
        Approximate bound of the Stream's length (0: unbounded).
    fsync
        ``fsync`` the file at each flush.
    """

    def __init__(self, kind: str = "redis", *, state: RedisState | None = None, directory: str | Path | None = None,
                 worker: str = "w0", max_len: int = 0, fsync: bool = False) -> None:
        if kind not in ("redis", "files", "off"):
            raise ConfigError(f"Expected `log` to be 'redis', 'files' or 'off', got {kind!r} - at `state.log`")
        if kind == "redis" and state is None:
            raise ConfigError("Expected a Redis client for `log = 'redis'`, got none - at `state.log`")
        if kind == "files" and directory is None:
            raise ConfigError("Expected a directory for `log = 'files'`, got none - at `state.log_dir`")
        self.kind = kind
        self.state = state
        self.key = state.key("log", "decisions") if state is not None else ""
        self.max_len = max_len
        self.fsync = fsync
        self.path = Path(directory) / f"decisions-{worker}.jsonl" if directory is not None else None
        self._buf: list[Decision] = []
        self._consent: list[dict[str, Any]] = []
        self.consent_key = state.key("log", "consent") if state is not None else ""
        self.consent_path = Path(directory) / f"consent-{worker}.jsonl" if directory is not None else None
        self.written_ = 0

    def add(self, decision: Decision) -> None:
        """Buffer ``decision`` until the next :meth:`flush`."""
        if self.kind != "off":
            self._buf.append(decision)

    def add_consent(self, entries: list[dict[str, Any]]) -> None:
        """Buffer consent history entries until the next :meth:`flush`."""
        if self.kind != "off":
            self._consent.extend(entries)

    def flush(self, pipe: Any = None) -> int:
        """Write the buffered decisions and consent entries (into ``pipe``, a Redis pipeline to
        execute by the caller, when given); returns how many decisions."""
        buf, consent = self._buf, self._consent
        if consent:
            self._flush_consent(consent, pipe)
            self._consent = []  # only once written: a refused flush keeps them for the next
        if not buf:
            return 0
        if self.kind == "redis":
            assert self.state is not None
            p = pipe if pipe is not None else self.state.client.pipeline(transaction=False)
            for d in buf:
                if self.max_len:
                    p.xadd(self.key, {"d": _ENC.encode(d)}, maxlen=self.max_len, approximate=True)
                else:
                    p.xadd(self.key, {"d": _ENC.encode(d)})
            if pipe is None:
                p.execute()
        elif self.kind == "files":
            assert self.path is not None
            with open(self.path, "ab") as fh:
                fh.write(b"".join(_JSON.encode(d) + b"\n" for d in buf))
                fh.flush()
                if self.fsync:
                    import os

                    os.fsync(fh.fileno())
        self._buf = []
        self.written_ += len(buf)
        return len(buf)


    def _flush_consent(self, entries: list[dict[str, Any]], pipe: Any) -> None:
        if self.kind == "redis":
            assert self.state is not None
            p = pipe if pipe is not None else self.state.client.pipeline(transaction=False)
            for e in entries:
                p.xadd(self.consent_key, {"d": _ENC.encode(e)})
            if pipe is None:
                p.execute()
        elif self.kind == "files":
            assert self.consent_path is not None
            with open(self.consent_path, "ab") as fh:
                fh.write(b"".join(_JSON.encode(e) + b"\n" for e in entries))


def read_consent(state: RedisState) -> list[dict[str, Any]]:
    """The consent history entries of the Stream, oldest first."""
    rows = state.run(lambda: state.client.xrange(state.key("log", "consent")), "XRANGE")
    out: list[dict[str, Any]] = [msgspec.msgpack.decode(fields[b"d"]) for _, fields in rows]
    return out


def read_stream(state: RedisState, *, count: int | None = None) -> list[Decision]:
    """The decisions of the Stream, oldest first (at most ``count``)."""
    rows = state.run(lambda: state.client.xrange(state.key("log", "decisions"), count=count), "XRANGE")
    return [_DEC.decode(fields[b"d"]) for _, fields in rows]
