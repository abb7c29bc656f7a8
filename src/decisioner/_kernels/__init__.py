"""Numba kernels: arrays in, arrays out, one decorator source (``_jit.py``).

Nothing here is public API; the typed components (``identity``, ``profiles``, ``scoring``,
``allocation``) validate inputs and call these kernels with canonical dtypes.
"""
