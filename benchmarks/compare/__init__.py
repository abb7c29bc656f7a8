"""Peer implementations for comparison benchmarks (one module per peer, identical function names)."""
