"""The ranker stage: a recommendation placement's learned re-ranker in the decision loop.

retrieval (the affinity top ``retrieve``, :func:`~decisioner._kernels.decide.decide_slate`)
-> features of those candidates (:class:`~decisioner.ranking.features.Featurizer`, one kernel)
-> the compiled model's raw scores (:class:`~decisioner.ranking.model.RankerModel`, one kernel)
-> the placement's policy over the re-ranked list
(:func:`~decisioner._kernels.decide.slate_ranked`), so a logged propensity stays the exact
probability of the slate given the ranked order.

**Models are state.** The model a placement serves is part of the engine's state: a hot swap
(:meth:`Engine.set_ranker`) is an operation in the write-ahead log that carries the model's text,
and a snapshot holds the text of each placement's current model, so recovery serves exactly the
model that was served, even if ``models/NAME`` was retrained since. A swap happens under the
engine's writer lock, between two decisions: no decision mixes two models, none is dropped.

**Checked before anything moves.** A model is parsed and its feature schema compared with the
serving schema (:data:`~decisioner.ranking.features.FEATURE_NAMES`, version
:data:`~decisioner.ranking.features.SCHEMA_VERSION`) before the swap: a malformed, truncated or
unsupported model, or one trained on other features, raises :class:`~decisioner.errors.ModelError`
naming what is wrong, and the placement keeps serving its current model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ModelError
from ..snapshot import ComponentState
from .features import FEATURE_NAMES, SCHEMA_VERSION
from .model import RankerModel, read_schema

if TYPE_CHECKING:
    from ..config import RankerSpec
    from .features import Featurizer

__all__ = ["Ranker", "ServedModel", "check_schema", "load_served"]


@dataclass(frozen=True)
class ServedModel:
    """A model as served: compiled, with its text (what the log and snapshots keep), where it
    was loaded from and its schema version."""

    model: RankerModel
    text: str
    source: str
    version: int

    @property
    def fingerprint(self) -> str:
        return self.model.fingerprint

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {
            "source": self.source, "fingerprint": self.fingerprint, "objective": m.objective, "trees": m.n_trees,
            "features": m.n_features, "schema_version": self.version,
        }


def check_schema(names: tuple[str, ...] | list[str], version: int, *, where: str) -> None:
    """Raise :class:`ModelError` unless ``names``/``version`` are the serving feature schema;
    the message names the first feature that differs."""
    if version != SCHEMA_VERSION:
        raise ModelError(
            f"Expected feature schema version {SCHEMA_VERSION}, got {version} - at `{where}` "
            "(retrain the model with this release's `decisioner train`)"
        )
    names = tuple(names)
    for i, want in enumerate(FEATURE_NAMES):
        got = names[i] if i < len(names) else None
        if got != want:
            raise ModelError(
                f"Expected feature {i} to be {want!r}, got {got!r} - at `{where}` "
                "(the model was trained on another feature schema)"
            )
    if len(names) > len(FEATURE_NAMES):
        raise ModelError(
            f"Expected {len(FEATURE_NAMES)} features, got {len(names)} (extra {names[len(FEATURE_NAMES)]!r})"
            f" - at `{where}`"
        )


def load_served(path: str | Path) -> ServedModel:
    """A model directory (``model.txt`` + ``features.json``, as ``decisioner train`` writes)
    compiled and checked against the serving schema; pure (touches no engine)."""
    d = Path(path)
    if not d.is_dir():
        raise ModelError(f"Expected a model directory (model.txt, features.json), got {str(path)!r} - at `model`")
    version, names = read_schema(d)
    try:
        text = (d / "model.txt").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ModelError(f"Expected a readable UTF-8 model.txt, got {type(e).__name__} - at `{d / 'model.txt'}`") from e
    return _served(text, str(d), version, tuple(names))


def _served(text: str, source: str, version: int, names: tuple[str, ...]) -> ServedModel:
    where = f"{source}/features.json"
    check_schema(names, version, where=where)
    model = RankerModel.from_text(text, source=f"{source}/model.txt")
    check_schema(model.feature_names, version, where=f"{source}/model.txt")
    return ServedModel(model, text, source, version)


class Ranker:
    """One recommendation placement's re-ranker: its current model, the featurizer and the
    scratch of one decision (used under the engine's writer lock).

    Parameters
    ----------
    spec
        ``retrieve`` (candidates re-ranked) and the model directory.
    featurizer
        The engine's feature kernel over its live stores.
    served
        The model to serve first.
    """

    def __init__(self, spec: RankerSpec, featurizer: Featurizer, served: ServedModel) -> None:
        self.spec = spec
        self.retrieve = spec.retrieve
        self.featurizer = featurizer
        self.served_ = served
        n = spec.retrieve
        self.X = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
        self.y = np.empty(n, dtype=np.float64)
        self.rwork = (np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float64))
        self.swaps_ = 0

    def score(self, row: int, now: int, items: np.ndarray, context: np.ndarray) -> np.ndarray:
        """The current model's raw scores of ``items`` (int64[m], m <= retrieve) for profile
        ``row`` at ``now``: a view of the scratch, valid until the next call."""
        m = items.shape[0]
        self.featurizer.fill(row, now, items, m, context, self.X)
        self.served_.model.predict_into(self.X, m, self.y)
        return self.y[:m]

    def score_with(self, row: int, now: int, items: np.ndarray, context: np.ndarray) -> np.ndarray:
        """:meth:`score` with scratch of its own (a reader's, beside the writer's decisions)."""
        m = items.shape[0]
        X = np.empty((m, len(FEATURE_NAMES)), dtype=np.float64)
        y = np.empty(m, dtype=np.float64)
        self.featurizer.reader().fill(row, now, np.ascontiguousarray(items, dtype=np.int64), m, context, X)
        self.served_.model.predict_into(X, m, y)
        return y

    def swap(self, served: ServedModel) -> None:
        """Serve ``served`` from the next decision on (the caller holds the writer lock)."""
        self.served_ = served
        self.swaps_ += 1

    def to_state(self) -> ComponentState:
        s = self.served_
        text = np.frombuffer(s.text.encode("utf-8"), dtype=np.uint8)
        return {"text": text}, {"source": s.source, "version": s.version, "fingerprint": s.fingerprint}

    def load_state(self, state: ComponentState) -> None:
        arrays, meta = state
        text = np.asarray(arrays["text"], dtype=np.uint8).tobytes().decode("utf-8")
        source = str(meta["source"])
        served = _served(text, source, int(meta["version"]), FEATURE_NAMES)
        if served.fingerprint != meta["fingerprint"]:
            raise ModelError(
                f"Expected the model with fingerprint {meta['fingerprint']}, got {served.fingerprint} - at "
                f"`snapshot ranker {source}`"
            )
        self.served_ = served



def served_of(op: Any) -> ServedModel:
    """The model a logged swap (:class:`~decisioner.journal.RankerOp`) served, compiled again
    from its text."""
    return _served(op.text, op.source, op.version, FEATURE_NAMES)


def rankers_of(config: Any, engine: Any) -> dict[str, Ranker]:
    """A :class:`Ranker` for each recommendation placement whose spec names a model, serving
    that model (loaded and checked now: an engine never starts with a model it cannot serve).
    ``engine`` gives the featurizer its stores (duck-typed: this stage imports no engine)."""
    specs = [p for p in config.placements if p.ranker is not None]
    if not specs:
        return {}
    from ..warmup import warm_ranker
    from .features import Featurizer

    warm_ranker()  # compiled (or loaded) now, not in the first decision
    featurizer = Featurizer.of(engine)
    return {p.name: Ranker(p.ranker, featurizer, load_served(p.ranker.model)) for p in specs}
