"""Kernel-test guard: every kernel call in these tests uses the canonical dtypes of
``warm_up()``, so no dispatcher ever gains a second signature here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ._helpers import JIT_DISABLED


@pytest.fixture(autouse=True)
def _one_signature_per_kernel() -> Iterator[None]:
    yield
    if JIT_DISABLED:
        return
    from decisioner.warmup import KERNELS

    extra = {k.__name__: k.signatures for k in KERNELS if len(k.signatures) > 1}
    assert not extra, f"a test called a kernel with non-canonical dtypes (recompiled): {extra}"
