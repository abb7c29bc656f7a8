"""Kernel tests: each kernel against its twin in ``tests/reference.py``."""
