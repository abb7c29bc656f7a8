"""Project conventions as tests (STYLE.md sections 1, 3 and 8): one decorator source for numba,
no object mode or fastmath, one compiled signature per kernel after ``warm_up()``, every kernel
warmed up, a cheap ``import decisioner``, and a docstring on every module."""

from __future__ import annotations

import ast
import io
import json
import os
import subprocess
import sys
import textwrap
import tokenize
from pathlib import Path

import pytest

import decisioner

SRC = Path(decisioner.__file__).resolve().parent
JIT_FILE = SRC / "_kernels" / "_jit.py"
MODULES = sorted(SRC.rglob("*.py"))
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"

#: names that compile with numba; only ``_kernels/_jit.py`` may use them
JIT_NAMES = {"njit", "jit", "generated_jit", "vectorize", "guvectorize", "cfunc", "stencil", "jit_module"}
#: never anywhere in code (docstrings and comments may mention them)
BANNED_NAMES = {"objmode", "forceobj", "fastmath"}


def rel(path: Path) -> str:
    return path.relative_to(SRC.parent).as_posix()


def decorator_root(node: ast.expr) -> str | None:
    """``numba`` for ``@numba.njit(...)``, ``njit`` for ``@njit``: the leftmost name."""
    while isinstance(node, (ast.Call, ast.Attribute)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def jit_uses(source: str) -> list[str]:
    """Every place ``source`` compiles with numba directly (a decorator rooted at ``numba``,
    a reference to ``njit``/``jit``/..., or importing one of them)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for dec in node.decorator_list:
                if decorator_root(dec) in {"numba", *JIT_NAMES}:
                    found.append(f"line {dec.lineno}: decorator @{ast.unparse(dec)}")
        elif isinstance(node, ast.Name) and node.id in JIT_NAMES:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Attribute) and node.attr in JIT_NAMES:
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "numba":
            found += [f"line {node.lineno}: from {node.module} import {a.name}" for a in node.names if a.name in JIT_NAMES]
    return sorted(set(found))


def banned_uses(source: str) -> list[str]:
    """Code tokens (not strings or comments) naming object mode or fastmath."""
    return [
        f"line {tok.start[0]}: {tok.string}"
        for tok in tokenize.generate_tokens(io.StringIO(source).readline)
        if tok.type == tokenize.NAME and tok.string in BANNED_NAMES
    ]


# --------------------------------------------------------------------------- (a) decorators


def test_the_scanners_see_violations() -> None:
    """The scans below would catch what they look for (so a pass means something)."""
    bad = textwrap.dedent(
        '''
        import numba
        from numba import njit, prange
        @numba.njit(cache=True)
        def f(x): return x
        @njit
        def g(x): return x
        h = numba.jit(nopython=True)(f)
        @numba.vectorize(["float64(float64)"])
        def v(x): return x
        def k(x):
            with numba.objmode(y="float64"):
                y = 1.0
            return y
        w = numba.njit(fastmath=True, forceobj=False)
        '''
    )
    assert len(jit_uses(bad)) >= 6
    assert [u.split(": ")[1] for u in banned_uses(bad)] == ["objmode", "fastmath", "forceobj"]
    fine = '"""Docs may say njit( or fastmath."""\n# objmode in a comment\nx = "jit(forceobj)"\n'
    assert jit_uses(fine) == [] and banned_uses(fine) == []


@pytest.mark.parametrize("path", [p for p in MODULES if p != JIT_FILE], ids=rel)
def test_numba_decorators_only_in_jit_module(path: Path) -> None:
    uses = jit_uses(path.read_text(encoding="utf-8"))
    assert not uses, f"{rel(path)} compiles with numba directly; use decisioner._kernels._jit: {uses}"


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_no_object_mode_or_fastmath(path: Path) -> None:
    uses = banned_uses(path.read_text(encoding="utf-8"))
    assert not uses, f"{rel(path)} uses {uses}"


def test_numba_imported_only_by_kernels() -> None:
    """Imports flow one way: components call kernels, only ``_kernels`` imports numba."""
    offenders = []
    for path in MODULES:
        if path.parent.name == "_kernels":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names] if isinstance(node, ast.Import)
                else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            )
            offenders += [f"{rel(path)}:{node.lineno} {n}" for n in names if n.split(".")[0] in {"numba", "llvmlite"}]
    assert not offenders


# --------------------------------------------------------------------------- (b) kernels


def discovered_kernels() -> dict[str, object]:
    """Every public kernel defined in ``decisioner._kernels``: numba dispatchers whose function
    lives in that module, excluding ``@inline`` and ``@helper`` helpers."""
    import importlib
    import pkgutil

    from numba.core.dispatcher import Dispatcher

    import decisioner._kernels as pkg

    found: dict[str, object] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        mod = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for name, obj in vars(mod).items():
            if (
                isinstance(obj, Dispatcher)
                and obj.py_func.__module__ == mod.__name__
                and not obj.targetoptions.get("inline")
                and not getattr(obj.py_func, "_kernel_helper", False)
            ):
                found[f"{info.name}.{name}"] = obj
    return found


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: kernels are plain functions")
def test_every_kernel_is_warmed_up() -> None:
    from decisioner.warmup import KERNELS

    found = discovered_kernels()
    assert found, "no kernels discovered"
    listed = {id(k) for k in KERNELS}
    missing = sorted(name for name, k in found.items() if id(k) not in listed)
    assert not missing, f"kernels missing from decisioner.warmup.KERNELS: {missing}"
    assert len(listed) == len(KERNELS), "a kernel is listed twice"
    assert listed <= {id(k) for k in found.values()}, "KERNELS lists something that is not a kernel"


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: kernels are plain functions")
def test_kernels_use_the_shared_decorator_options() -> None:
    from decisioner.warmup import KERNELS

    for k in KERNELS:
        assert k.targetoptions.get("nogil") is True, k.__name__
        assert not k.targetoptions.get("fastmath"), k.__name__
        assert type(getattr(k, "_cache", None)).__name__ != "NullCache", f"{k.__name__} is not cache=True"


def run_python(code: str, env: dict[str, str | None] | None = None) -> str:
    """Run ``code`` in a fresh interpreter; ``env`` entries override (None: a fresh temporary
    ``NUMBA_CACHE_DIR`` for that key)."""
    import tempfile

    full = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        for k, v in (env or {}).items():
            full[k] = tmp if v is None else v
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: no compiled signatures")
def test_one_signature_per_kernel_after_warm_up() -> None:
    """A fresh process, ``warm_up()`` only: each request-path kernel compiled exactly once (a
    second signature would be a silent recompile on the hot path) and the admin kernels not at
    all; then ``warm_up(admin=True)``: every kernel exactly once."""
    out = run_python(
        "import json, decisioner\n"
        "from decisioner.warmup import KERNELS\n"
        "decisioner.warm_up()\n"
        "a = {k.__name__: [str(s) for s in k.signatures] for k in KERNELS}\n"
        "decisioner.warm_up(admin=True)\n"
        "b = {k.__name__: [str(s) for s in k.signatures] for k in KERNELS}\n"
        "print(json.dumps([a, b]))\n"
    )
    from decisioner.warmup import ADMIN, RANKER

    admin = {k.__name__ for k in ADMIN + RANKER}
    sigs, sigs_all = json.loads(out)
    wrong = {name: s for name, s in sigs.items() if len(s) != (0 if name in admin else 1)}
    assert not wrong, f"expected one signature per request-path kernel and none for {sorted(admin)}, got {wrong}"
    wrong = {name: s for name, s in sigs_all.items() if len(s) != 1}
    assert not wrong, f"expected one signature per kernel after warm_up(admin=True), got {wrong}"


@pytest.mark.slow
@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: no compiled signatures")
def test_helpers_compile_once_per_signature() -> None:
    """Every ``@helper`` reached by ``warm_up(admin=True)`` compiles for one argument signature
    per key dtype it sorts or selects, never for literal types (each extra one is compile time)."""
    out = run_python(
        "import json, importlib, pkgutil, tempfile, os\n"
        "import decisioner\n"
        "import decisioner._kernels as pkg\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "decisioner.warm_up(admin=True)\n"
        "found = {}\n"
        "for info in pkgutil.iter_modules(pkg.__path__):\n"
        "    mod = importlib.import_module('decisioner._kernels.' + info.name)\n"
        "    for name, obj in vars(mod).items():\n"
        "        if isinstance(obj, Dispatcher) and getattr(obj.py_func, '_kernel_helper', False) \\\n"
        "                and obj.py_func.__module__ == mod.__name__:\n"
        "            found[info.name + '.' + name] = [str(s) for s in obj.signatures]\n"
        "print(json.dumps(found))\n",
        env={"NUMBA_CACHE_DIR": None},  # helpers compile only when a caller does: a fresh cache
    )
    found = json.loads(out)
    assert found, "no helpers found"
    literal = {name: s for name, s in found.items() if any("Literal" in x for x in s)}
    assert not literal, f"helpers compiled for literal argument types: {literal}"
    # sort_by and its pieces serve an int64 and a float64 sort
    allowed = {"topk.sort_by": 2, "topk._sift_max": 2, "topk._less": 2}
    extra = {name: s for name, s in found.items() if len(s) > allowed.get(name, 1)}
    assert not extra, f"helpers compiled more often than expected: {extra}"


PROBE = """
from decisioner._kernels._jit import kernel
from decisioner._kernels.topk import sort_by


@kernel
def probe(x):
    sort_by(x, x[:0])
    return x[0] * 10.0 + x[-1] + {version}
"""

PROBE_RUN = """
import json, sys
import numpy as np
sys.path.insert(0, {path!r})
from probe_mod import probe
from decisioner._kernels.topk import sort_by
got = probe(np.array([3.0, 1.0, 2.0]))
sig = sort_by.signatures[0]
print(json.dumps({{"got": got, "library": type(sort_by.overloads[sig].library).__name__,
                  "helper_from_cache": sum(sort_by.stats.cache_hits.values())}}))
"""


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: nothing compiles")
def test_helpers_link_into_kernels_without_machine_code_of_their_own(tmp_path: Path) -> None:
    """A helper compiles to IR only (``_jit._LinkOnlyLibrary``: no machine code that nothing
    would run) and is cached as IR: a kernel compiled later, in another process, links the
    helper loaded from the cache and computes what it computed with a freshly compiled one."""
    cache = tmp_path / "cache"
    cache.mkdir()
    runs = []
    for version in (0, 100):  # a new kernel source (and size) each time: the kernel compiles, the helper loads
        (tmp_path / "probe_mod.py").write_text(PROBE.format(version=version))
        out = run_python(PROBE_RUN.format(path=str(tmp_path)), env={"NUMBA_CACHE_DIR": str(cache)})
        runs.append(json.loads(out))
    first, second = runs
    assert first == {"got": 13.0, "library": "_LinkOnlyLibrary", "helper_from_cache": 0}, first
    assert second["got"] == 113.0 and second["helper_from_cache"] == 1, second


@pytest.mark.skipif(JIT_DISABLED, reason="NUMBA_DISABLE_JIT=1: nothing compiles")
def test_compile_flags_memo_follows_every_change() -> None:
    """``_jit._Flags`` (the flags our kernels compile with) keeps its value table between
    changes only: equal to and hashed as numba's own ``Flags`` with the same options, unequal
    after any change (set, discard, copy then set), and our kernels compile with it."""
    from numba.core.compiler import Flags

    from decisioner._kernels import _jit
    from decisioner._kernels.decide import decide_slate

    plain = Flags()
    plain.nrt = True
    ours = _jit._Flags(plain)
    assert ours == plain and plain == ours and hash(ours) == hash(plain) and ours.values() == plain.values()
    copy = ours.copy()
    assert type(copy) is _jit._Flags and copy == ours
    copy.nrt = False
    assert copy != ours and copy.values()["nrt"] is False and ours.values()["nrt"] is True
    copy.discard("nrt")
    assert copy.values()["nrt"] is Flags().nrt
    copy.values()["nrt"] = "changed"  # a caller changing the returned table changes nothing
    assert copy.values()["nrt"] is Flags().nrt
    assert decide_slate._compiler.pipeline_class is _jit._Compiler


# --------------------------------------------------------------------------- (c) import cost


def test_import_decisioner_is_cheap() -> None:
    """``import decisioner`` (in a fresh process) loads no numba, llvmlite, lightgbm or pandas,
    and no kernel module."""
    out = run_python("import sys, json, decisioner\nprint(json.dumps(sorted(sys.modules)))\n")
    loaded = set(json.loads(out))
    heavy = {m for m in loaded if m.split(".")[0] in {"numba", "llvmlite", "lightgbm", "pandas", "scipy"}}
    assert not heavy, f"import decisioner imported {sorted(heavy)}"
    assert "decisioner._kernels" not in loaded and "decisioner.warmup" not in loaded


# --------------------------------------------------------------------------- (d) docstrings


@pytest.mark.parametrize("path", MODULES, ids=rel)
def test_every_module_has_a_docstring(path: Path) -> None:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert doc and doc.strip(), f"{rel(path)} has no module docstring"
