"""The one decorator source for numba kernels.

``kernel``: serial, cached, releases the GIL. ``parallel_kernel``: cached, ``parallel=True``
for batch paths only. ``fastmath`` stays off (it changes NaN/inf behaviour). ``prefetch``: a
cache hint for bulk kernels that walk random memory (no effect on results).

Cache caveats: numba invalidates a cached kernel when its own file changes, not when a callee
in another file changes, and freezes module globals at compile time. Kernels therefore take
tunables as arguments; shared helpers live in ``rng.py`` and ``_common.py`` only. For
read-only installs set ``NUMBA_CACHE_DIR`` to a writable directory.
"""

from __future__ import annotations

from typing import Any, Callable, TypeVar, cast, overload

import numba
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["kernel", "parallel_kernel", "inline", "prefetch"]


@overload
def kernel(fn: F) -> F: ...


@overload
def kernel(fn: None = None, *, nrt: bool = True) -> Callable[[F], F]: ...


def kernel(fn: F | None = None, *, nrt: bool = True) -> F | Callable[[F], F]:
    """Serial kernel: ``njit(cache=True, nogil=True)``; ``@kernel`` or ``@kernel(nrt=False)``.

    ``nrt=False`` compiles without numba's reference-counted memory manager: the kernel cannot
    allocate arrays, and in exchange pays no atomic reference counting when it hands arrays to
    helpers with branches (numba cannot prune those; in the identity link kernels they cost
    about 15 ns per helper call, more than the work itself).
    """

    def wrap(f: F) -> F:
        opts: dict[str, Any] = {"cache": True, "nogil": True}
        if not nrt:
            opts["_nrt"] = False
        return cast(F, numba.njit(**opts)(f))

    return wrap if fn is None else wrap(fn)


def parallel_kernel(fn: F) -> F:
    """Batch kernel: ``njit(cache=True, nogil=True, parallel=True)``."""
    return cast(F, numba.njit(cache=True, nogil=True, parallel=True)(fn))


def inline(fn: F) -> F:
    """Helper called only from other kernels (not a public kernel; no warm-up entry)."""
    return cast(F, numba.njit(cache=True, nogil=True, inline="always")(fn))


def _prefetch_codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
    arr_t = signature.args[0]
    ary = context.make_array(arr_t)(context, builder, args[0])
    idx = context.cast(builder, args[1], signature.args[1], types.intp)
    ptr = cgutils.get_item_pointer(  # type: ignore[no-untyped-call]
        context, builder, arr_t, ary, [idx], wraparound=False, boundscheck=False
    )
    i8p = builder.bitcast(ptr, ir.IntType(8).as_pointer())
    i32 = ir.IntType(32)
    name = "llvm.prefetch.p0" if str(i8p.type) == "ptr" else "llvm.prefetch.p0i8"  # opaque pointers or not
    fn = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
        builder.module, ir.FunctionType(ir.VoidType(), [i8p.type, i32, i32, i32]), name
    )
    # read, high temporal locality, data cache
    builder.call(fn, [i8p, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
    return context.get_dummy_value()


def _prefetch_typer(typingctx: Any, arr: Any, idx: Any) -> Any:
    if not isinstance(arr, types.Array) or arr.ndim != 1 or not isinstance(idx, types.Integer):
        return None
    return types.void(arr, idx), _prefetch_codegen


def _prefetch_py(arr: Any, idx: Any) -> None:
    """No-op when kernels run as Python (``NUMBA_DISABLE_JIT=1``)."""


#: ``prefetch(arr, i)`` inside a kernel: ask the CPU to start loading ``arr[i]`` (1-D array) into
#: cache. Unlike a plain read it does not hold up instruction retirement, so misses of upcoming
#: work overlap with the current work. Never changes results.
prefetch: Any = _prefetch_py if getattr(numba.config, "DISABLE_JIT", False) else intrinsic(_prefetch_typer)
