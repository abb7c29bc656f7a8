"""Helpers shared by the kernel tests: JIT-off sizing and statistical tolerances."""

from __future__ import annotations

import math
import os

#: ``NUMBA_DISABLE_JIT=1``: kernels run as Python, so loops and sample sizes shrink
JIT_DISABLED = os.environ.get("NUMBA_DISABLE_JIT", "0") == "1"

#: statistical checks accept deviations up to this many standard errors (two-sided
#: p ~ 6e-5 per check; the seeds are fixed, so a pass is reproducible, not lucky by rerun)
Z = 4.0


def size(jit: int, nojit: int) -> int:
    """A problem size: ``jit`` when compiled, ``nojit`` under ``NUMBA_DISABLE_JIT=1``."""
    return nojit if JIT_DISABLED else jit


def binomial_se(p: float, n: int) -> float:
    """Standard error of an empirical frequency with success probability ``p`` over ``n``."""
    return math.sqrt(max(p * (1.0 - p), 0.0) / n)
