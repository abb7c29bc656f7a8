"""Data for tests, demos and benchmarks: the seeded synthetic world."""

from .obd import OBDData, bts_action_distribution, bts_prior, fetch_obd, load_obd
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
    "OBDData",
    "bts_action_distribution",
    "bts_prior",
    "fetch_obd",
    "load_obd",
    "FORMAT_VERSION",
    "PRICE_BANDS",
    "ResponseModel",
    "World",
    "WorldSpec",
    "generate_world",
    "load_world",
    "write_world",
]
