"""Lua source of the identity graph functions (see :mod:`decisioner.state.identity`)."""

from __future__ import annotations

from typing import Final

__all__ = ["IDENTITY_LUA"]

IDENTITY_LUA: Final = ""
