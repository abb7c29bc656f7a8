"""Data for tests, demos and benchmarks: the seeded synthetic world, the Open Bandit Dataset,
FEBRL4 (record linkage) and a generated CRM load."""

from .crm import crm_records
from .febrl import febrl4_columns, fetch_febrl, write_febrl4
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
    "crm_records",
    "febrl4_columns",
    "fetch_febrl",
    "write_febrl4",
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
