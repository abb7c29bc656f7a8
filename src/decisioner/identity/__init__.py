"""Identity resolution: normalised, keyed-hash identifiers in a union-find graph."""

from .graph import IdentityGraph, LinkResult
from .normalise import normalise

__all__ = ["IdentityGraph", "LinkResult", "normalise"]
