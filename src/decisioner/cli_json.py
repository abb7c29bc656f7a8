"""The CLI's one JSON writer and its pipe-safe exit.

Every ``--json`` output goes through :func:`dumps`: strict JSON (RFC 8259), so NaN and the
infinities become ``null`` (JSON has no spelling for them; Python's ``json`` would write the
bare tokens ``NaN``/``Infinity`` that strict parsers refuse), NumPy scalars and arrays become
numbers and lists, and results (msgspec Structs) their fields. :func:`quiet_broken_pipe` ends the
process quietly when the reader of stdout goes away (``decisioner ... --json | head``): stdout is
pointed at ``/dev/null`` so the interpreter's final flush cannot fail again, and the exit code is
:data:`EXIT_BROKEN_PIPE` (128 + SIGPIPE, what a shell reports for a command killed by a closed
pipe).
"""

from __future__ import annotations

import json
import math
import os
import sys
from typing import Any, Final

import msgspec
import numpy as np

__all__ = ["EXIT_BROKEN_PIPE", "strict", "dumps", "quiet_broken_pipe"]

#: exit code after the reader of stdout went away (128 + SIGPIPE)
EXIT_BROKEN_PIPE: Final = 141


def strict(obj: Any) -> Any:
    """``obj`` as JSON-ready builtins with every non-finite float replaced by ``None``.

    >>> strict({"a": float("nan"), "b": [np.float64(1.5), np.int64(2), float("inf")]})
    {'a': None, 'b': [1.5, 2, None]}
    """
    if isinstance(obj, float):  # numpy float64 included (a float subclass)
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, (str, bool, int)) or obj is None:
        return int(obj) if isinstance(obj, int) and not isinstance(obj, bool) else obj
    if isinstance(obj, dict):
        return {str(k): strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [strict(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        return strict(obj.item())
    if isinstance(obj, msgspec.Struct):
        return strict(msgspec.to_builtins(obj, enc_hook=_numpy_hook))  # nested structs become dicts
    return str(obj)


def _numpy_hook(obj: Any) -> Any:
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    raise TypeError(f"cannot encode {type(obj).__name__}")


def dumps(obj: Any, *, indent: int | None = None) -> str:
    """Strict JSON text of ``obj`` (see the module docstring).

    >>> dumps({"lift": float("nan"), "n": np.int64(3)})
    '{"lift": null, "n": 3}'
    """
    return json.dumps(strict(obj), allow_nan=False, indent=indent)


def quiet_broken_pipe() -> int:
    """After a :class:`BrokenPipeError` on stdout: silence stdout and return the exit code."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout without a file descriptor (captured): nothing to silence
        pass
    return EXIT_BROKEN_PIPE
