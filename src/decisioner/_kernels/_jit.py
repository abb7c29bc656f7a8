"""The one decorator source for numba kernels.

``kernel``: serial, cached, releases the GIL. ``parallel_kernel``: cached, ``parallel=True``
for batch paths only. ``helper``: code shared by kernels, compiled once per signature and
called normally (LLVM inlines it where that pays). ``inline``: numba-IR inlining, for the rare
case that needs it (it is the most expensive way to share code: see its docstring).
``fastmath`` stays off (it changes NaN/inf behaviour). ``prefetch``: a cache hint for bulk
kernels that walk random memory (no effect on results).

Compile time (a cold ``warm_up()`` compiles every request-path kernel): none of these builds
the C-callable ``cfunc`` wrapper numba makes by default (``no_cfunc_wrapper``; nothing here
takes a kernel's address), which saves about a tenth of LLVM's work; a helper without a Python
entry point compiles to LLVM IR only, which its calling kernels link in and turn into machine
code as part of their own (no machine code of its own that nothing would run); kernel-to-kernel
and helper calls are typed without literal arguments so each callee compiles once. A new kernel is
cheap when it reuses helpers (compiled once, whoever calls them) instead of inlining code into
numba IR, and when its call sites pass canonical dtypes (one signature per callee). Every
compiled function also costs numba a fixed 50-100 ms (its pipeline of passes, wrappers, cache
files), so a helper pays only when it is shared or replaces a function that is large: cutting a
kernel into single-use phase helpers made ``graph_link`` and ``rank_probabilities`` slower to
compile, not faster. Everything here compiles with :class:`_Flags` (numba's flags, cheaper to
look up during type inference: about a tenth of a cold ``warm_up()``).

Cache caveats: numba invalidates a cached kernel when its own file changes, not when a callee
in another file changes, and freezes module globals at compile time. Kernels therefore take
tunables as arguments; shared helpers live in ``rng.py`` and ``topk.py`` (``sort_by``) only. For
read-only installs set ``NUMBA_CACHE_DIR`` to a writable directory.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast, overload

import numba
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.codegen import JITCodeLibrary
from numba.core.compiler import Compiler, Flags
from numba.core.dispatcher import Dispatcher
from numba.extending import intrinsic

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["kernel", "parallel_kernel", "helper", "inline", "prefetch"]

_ENV_PREFIX = "_ZN08NumbaEnv"  # numba's name for a function's environment global


class _LinkOnlyLibrary(JITCodeLibrary):
    """The code library of a helper without a Python entry point: LLVM IR that each calling
    kernel links in and compiles as part of its own machine code, never machine code of its
    own, which nothing would run. The IR gets numba's function-level optimisation only: the
    module-level pipeline (inlining, loop passes, vectorisation) runs where the code runs, in
    each kernel's module, whose inliner optimises callees before inlining them, so a helper's
    own module-level pass was repeated work. Both together take about 1.5 s of LLVM work out
    of a cold ``warm_up()`` (of about 22 s; per-phase CPU accounting, same run conditions).

    Only the helper's environment global goes to the execution engine (numba writes the
    environment's address there). The cache stores the IR (numba's bitcode form); a helper
    loaded from it is an ordinary library again, compiled when loaded.
    """

    def __init__(self, codegen: Any, name: str) -> None:
        base: Any = super()
        base.__init__(codegen, name)
        self._envs: dict[str, str] = {}  # name -> its definition (LLVM assembly)

    def add_llvm_module(self, ll_module: Any) -> None:
        # before optimisation, so an environment global is known even if unused
        self._envs.update((gv.name, str(gv)) for gv in ll_module.global_variables if gv.name.startswith(_ENV_PREFIX))
        base: Any = super()
        base.add_llvm_module(ll_module)

    def _finalize_final_module(self) -> None:
        lib: Any = self
        lib._finalize_dynamic_globals()
        lib._verify_declare_only_symbols()
        if self._envs:
            stub = llvm.parse_assembly("\n".join(self._envs[n] for n in sorted(self._envs)))
            lib._codegen._add_module(stub)
            lib._codegen._engine.finalize_object()
        lib._finalized = True

    def _optimize_final_module(self) -> None:
        pass  # see the class docstring: the calling kernels' module pipeline does it

    def get_pointer_to_function(self, name: str) -> int:
        lib: Any = self
        lib._ensure_finalized()
        return 0  # no machine code: the helper is callable from kernels only

    def serialize_using_object_code(self) -> Any:
        lib: Any = self
        return lib.serialize_using_bitcode()


_FLAGS_HASH = hash(tuple(sorted(Flags.options)))  # what ``Flags.__hash__`` returns for every instance


class _Flags(Flags):
    """numba's compile flags with their value table kept between changes.

    Type inference looks up every call it types (each ``a[i]``, ``a[i] = v``, ``if x``: several
    overload templates each, again on every pass of the inference) in caches keyed by the
    current flags; each lookup hashed them and compared them by building a table of all ~40
    options twice, about a tenth of a cold ``warm_up()``. The table is built once here and
    again only after an option changes; the hash, equality and every value stay what
    ``Flags`` gives (its hash ignores the values: one constant).
    """

    def __init__(self, copy_from: Any = None) -> None:
        object.__setattr__(self, "_table", None)
        base: Any = super()
        base.__init__(copy_from)

    def __setattr__(self, name: str, value: Any) -> None:  # options are properties: every change comes here
        object.__setattr__(self, "_table", None)
        object.__setattr__(self, name, value)

    def discard(self, name: str) -> None:
        object.__setattr__(self, "_table", None)
        base: Any = super()
        base.discard(name)

    def values(self) -> dict[str, Any]:
        table: dict[str, Any] | None = self.__dict__["_table"]
        if table is None:
            base: Any = super()
            table = base.values()
            object.__setattr__(self, "_table", table)
        return dict(table)

    def __eq__(self, other: object) -> bool:
        if other is self:
            return True
        if isinstance(other, _Flags):
            return bool(self.values() == other.values())
        base: Any = super()
        return bool(base.__eq__(other))

    def __hash__(self) -> int:
        return _FLAGS_HASH


class _Compiler(Compiler):
    """numba's compiler with :class:`_Flags` (same flags, cheaper to look up)."""

    def __init__(self, typingctx: Any, targetctx: Any, library: Any, args: Any, return_type: Any, flags: Any,
                 locals: Any) -> None:
        base: Any = super()
        base.__init__(typingctx, targetctx, library, args, return_type, _Flags(flags), locals)


class _HelperCompiler(_Compiler):
    """numba's compiler with the helper's code kept in a :class:`_LinkOnlyLibrary`."""

    def compile_extra(self, func: Any) -> Any:
        state: Any = self.state
        state.library = _LinkOnlyLibrary(state.targetctx.codegen(), func.__qualname__)
        base: Any = super()
        return base.compile_extra(func)


def _typed_without_literals(disp: Any) -> Any:
    """Make calls from other kernels compile ``disp`` for plain types only.

    Numba types a call inside a kernel while the caller's own types are still being inferred,
    and compiles the callee for the argument types it sees at that moment: a counter set to
    ``0`` and incremented in a loop reaches the callee first as ``Literal[int](0)``, later as
    ``int64``, so the callee would compile twice (and a constant argument pins a literal
    specialization per value). Dropping the literals before the callee compiles leaves one
    specialization per real signature. Calls from Python are unaffected (numba's own
    dispatch already tries plain types first).
    """
    if not isinstance(disp, Dispatcher):  # NUMBA_DISABLE_JIT=1: a plain function
        return disp
    resolve = disp.get_call_template
    plain: Callable[[Any], Any] = types.unliteral

    def get_call_template(args: Any, kws: Any) -> Any:
        return resolve(tuple(plain(a) for a in args), {k: plain(v) for k, v in kws.items()})

    # this dispatcher only; setattr, as mypy refuses assigning to a method
    setattr(disp, "get_call_template", get_call_template)  # noqa: B010
    return disp


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
        opts: dict[str, Any] = {"cache": True, "nogil": True, "no_cfunc_wrapper": True, "pipeline_class": _Compiler}
        if not nrt:
            opts["_nrt"] = False
        return cast(F, _typed_without_literals(numba.njit(**opts)(f)))

    return wrap if fn is None else wrap(fn)


def parallel_kernel(fn: F) -> F:
    """Batch kernel: ``njit(cache=True, nogil=True, parallel=True)``."""
    opts: dict[str, Any] = {
        "cache": True, "nogil": True, "parallel": True, "no_cfunc_wrapper": True, "pipeline_class": _Compiler,
    }
    return cast(F, numba.njit(**opts)(fn))


@overload
def helper(fn: F) -> F: ...


@overload
def helper(
    fn: None = None, *, nrt: bool = False, python: bool = False, hot: bool = False
) -> Callable[[F], F]: ...


def helper(
    fn: F | None = None, *, nrt: bool = False, python: bool = False, hot: bool = False
) -> F | Callable[[F], F]:
    """Shared code called from kernels with an ordinary call (not a public kernel; no warm-up
    entry): ``@helper``, or ``@helper(nrt=True)`` for one that allocates arrays,
    ``@helper(python=True)`` for one also called from Python (tests of ``rng``), and
    ``@helper(hot=True)`` for one on a hot path, which LLVM always inlines into its callers.

    Compiled once per argument signature and cached, then linked into each calling kernel,
    where LLVM still inlines it when that pays (small helpers always are). Compile cost is paid
    once, however many kernels and call sites use it: share code this way, not with
    :func:`inline`. Without ``nrt`` (the default) the helper pays no reference counting on the
    arrays it is handed and cannot allocate. Without ``python`` numba builds no Python entry
    point for it (about a tenth of a cold warm-up) and no machine code (its IR is linked into
    each calling kernel, which compiles it as its own: see :class:`_LinkOnlyLibrary`); calling
    it from Python raises ``TypeError`` (use ``helper.py_func`` to run its Python source).

    ``hot`` marks the function ``alwaysinline`` for LLVM: numba still types and lowers it once,
    but each caller gets the body inlined, so it optimises with the caller's loop (array
    pointers and lengths stay in registers, no call with ~7 arguments per array). Measured to
    matter for the request path (the linking phases per group of ``graph_link_many``, the scoring
    helpers of ``recommend_items``); left off, LLVM inlines only what its cost model likes.
    """

    def wrap(f: F) -> F:
        f.__dict__["_kernel_helper"] = True  # test_conventions: not a public kernel
        opts: dict[str, Any] = {"cache": True, "nogil": True, "no_cfunc_wrapper": True, "pipeline_class": _Compiler}
        if not nrt:
            opts["_nrt"] = False
        if not python:
            opts["no_cpython_wrapper"] = True
            opts["pipeline_class"] = _HelperCompiler
        if hot:
            opts["forceinline"] = True
        disp = _typed_without_literals(numba.njit(**opts)(f))
        if not python and isinstance(disp, Dispatcher):
            disp.__class__ = _kernel_only(type(disp))
        return cast(F, disp)

    return wrap if fn is None else wrap(fn)


_KERNEL_ONLY: dict[type, type] = {}


def _kernel_only(base: type) -> type:
    """``base`` (numba's dispatcher class) with Python calls refused: a helper compiled without
    a Python entry point would otherwise jump to a null address."""
    cls = _KERNEL_ONLY.get(base)
    if cls is None:

        def __call__(self: Any, *args: Any, **kwargs: Any) -> Any:
            raise TypeError(
                f"{self.py_func.__qualname__} is a kernel helper without a Python entry point: call it "
                f"from a kernel, or run its source with {self.py_func.__qualname__}.py_func(...)"
            )

        cls = _KERNEL_ONLY[base] = type("KernelOnly" + base.__name__, (base,), {"__call__": __call__})
    return cls


def inline(fn: F) -> F:
    """A few lines inlined into each caller's numba IR (not a public kernel; no warm-up entry).

    Numba copies the callee's IR once per call site, block by block, each copy carrying the
    callee's whole variable scope: the cost grows with (blocks x variables) of the callee,
    including everything inlined into it. Keep ``inline`` for small leaf helpers (no loops
    calling other inline helpers); anything larger is a :func:`helper`.
    """
    return cast(F, numba.njit(cache=True, nogil=True, inline="always", pipeline_class=_Compiler)(fn))


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
