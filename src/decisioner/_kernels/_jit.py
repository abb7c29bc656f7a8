"""The one decorator source for numba kernels.

``kernel``: serial, cached, releases the GIL. ``parallel_kernel``: cached, ``parallel=True``
for batch paths only. ``fastmath`` stays off (it changes NaN/inf behaviour).

Cache caveats: numba invalidates a cached kernel when its own file changes, not when a callee
in another file changes, and freezes module globals at compile time. Kernels therefore take
tunables as arguments; shared helpers live in ``rng.py`` and ``_common.py`` only. For
read-only installs set ``NUMBA_CACHE_DIR`` to a writable directory.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, cast

import numba

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["kernel", "parallel_kernel", "inline"]


def kernel(fn: F) -> F:
    """Serial kernel: ``njit(cache=True, nogil=True)``."""
    return cast(F, numba.njit(cache=True, nogil=True)(fn))


def parallel_kernel(fn: F) -> F:
    """Batch kernel: ``njit(cache=True, nogil=True, parallel=True)``."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(fn))


def inline(fn: F) -> F:
    """Helper called only from other kernels (not a public kernel; no warm-up entry)."""
    return cast(F, numba.njit(cache=True, nogil=True, inline="always")(fn))
