"""Learned ranking: features (:mod:`.features`), training (:mod:`.train`, needs LightGBM), LightGBM
models compiled to flat arrays and scored by a numba kernel (:mod:`.model`), and the ranker stage
of the decision loop (:mod:`.stage`).

Serving imports no LightGBM: :func:`load_model` reads a text model, a ``dump_model()`` JSON or a
model directory (``model.txt`` + ``features.json``) into a :class:`RankerModel`.
"""

from __future__ import annotations

from .model import RankerModel, load_model, read_schema

__all__ = ["RankerModel", "load_model", "read_schema"]
