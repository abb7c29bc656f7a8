"""The server-side function library (Redis Functions, Lua 5.1), loaded by
:meth:`decisioner.state.connection.RedisState.load_functions`.

The library name and every function name carry :data:`VERSION`: a change to what a function
stores or returns is a new version, so workers of two releases never run each other's code on
the same keys (``FUNCTION LOAD REPLACE`` replaces only the library of the same version).
Errors raised by the library start with a code (``DCSCONFIG``, ``DCSSCHEMA``, ``DCSGONE``) that
the client turns into the matching decisioner error.

Functions (all with keys under one hash tag, so they run on one Cluster slot):

* ``dcs1_version`` -- the library version (a health check).
* identity: see :mod:`decisioner.state.identity` (``dcs1_idg_*``).
"""

from __future__ import annotations

from typing import Final

from ._idg_lua import IDENTITY_LUA
from ._idg_unmerge_lua import UNMERGE_LUA

__all__ = ["LIBRARY", "LIBRARY_NAME", "VERSION"]

VERSION: Final = 1
LIBRARY_NAME: Final = f"decisioner_v{VERSION}"

_HEADER: Final = f"""#!lua name={LIBRARY_NAME}
local VERSION = {VERSION}
redis.register_function{{function_name='dcs1_version', callback=function(keys, args) return VERSION end,
  flags={{'no-writes'}}}}
"""

#: the whole library source (starts with the ``#!lua`` line, as FUNCTION LOAD needs)
LIBRARY: Final = _HEADER + IDENTITY_LUA + UNMERGE_LUA
