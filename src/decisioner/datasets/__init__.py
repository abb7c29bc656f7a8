"""Data for tests, demos and benchmarks: the seeded synthetic world."""

from .synthetic import (
    FORMAT_VERSION,
    PRICE_BANDS,
    ResponseModel,
    World,
    WorldSpec,
    generate_world,
    load_world,
    write_world,
)

__all__ = [
    "FORMAT_VERSION",
    "PRICE_BANDS",
    "ResponseModel",
    "World",
    "WorldSpec",
    "generate_world",
    "load_world",
    "write_world",
]
