"""Identifier rules compiled from configuration, and the keys and check tags of identifiers.

Key format (persisted; changing any of it changes every stored key): :mod:`decisioner.hashing`
owns it. In short, ``BLAKE2b(type || 0x1f || value, key=secret, digest_size=16)`` over the UTF-8
of the normalised value gives the 64-bit key (bytes 0-7, little-endian) and an independent
32-bit check tag (bytes 8-11, 0 replaced by 1) stored with the key. Two identifiers are the same
only when key and tag match, so an identity is 96 bits. In the key arrays the tag travels in the
low 32 bits of the second row; bit 32 (:data:`BLOCKED_FLAG`) marks a value the rules block, so
the kernel refuses it.

Collision odds. With ``n`` identifiers the chance that any two share a 64-bit key is about
``n^2 / 2^65``: 2.7e-4 at ``n = 10^8``. Such a pair is detected (the tags differ, except with
probability 2^-32) and the newcomer is refused and counted (``collision``) instead of merging two
people; an undetected collision at 10^8 has probability about 6e-14.

Blocked values are compared twice: trimmed and lower-cased before any format check (so
``"null"`` in an email field is blocked rather than an error), and after normalisation (so
``Test@Test.com`` and Gmail variants of a blocked address are blocked too); patterns are
searched in the normalised value. A phone number that is not valid (no E.164 form) is an
error unless a phone pattern matches ``+`` and its digits: then it is a blocked placeholder
(``000-000-0000``, ``(555) 555-5555``), like ``"null"``. Valid numbers are judged by their
E.164 form only, so every spelling of one number gets the same answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..config import DEFAULT_IDENTIFIERS, PHONE_REGIONS, IdentifierSpec, IdentitySpec
from ..errors import ConfigError, SchemaError
from ..hashing import identifier_key
from .normalise import CONTROL, normalise

__all__ = ["BLOCKED_FLAG", "TypeRule", "IdentifierRules", "identifier_key"]

#: bit set in a key's second word when the rules block the value
BLOCKED_FLAG: Final = 1 << 32
#: kernel array sizes (see ``_kernels/graph.py``)
N_TYPES: Final = 128
MAX_SLOTS: Final = 16
MINUTES_PER_DAY: Final = 1440

_NON_DIGIT: Final = re.compile(r"\D")


@dataclass(frozen=True)
class TypeRule:
    """The compiled rule of one identifier type (see :class:`~decisioner.config.IdentifierSpec`)."""

    name: str
    kind: str
    provider_rules: bool
    priority: int
    limit: int
    ttl_minutes: int
    blocked: frozenset[str]
    pattern: re.Pattern[str] | None


class IdentifierRules:
    """Type codes and rules of an identity graph: normalisers, blocked values, priorities,
    limits and time-to-live, as Python rules and as the ``trules``/``meta`` kernel arrays.

    Parameters
    ----------
    spec
        Identity configuration (default: :class:`~decisioner.config.IdentitySpec` defaults).
    types
        Type names in code order (default: ``spec.types``); other types get codes when seen.
    default_region
        ISO 3166-1 region of national phone numbers, such as ``"US"`` (default:
        ``spec.default_phone_region``).

    Examples
    --------
    >>> r = IdentifierRules()
    >>> r.canonical("email", " NULL "), r.canonical("email", "Ada@Example.com")
    (('null', True), ('ada@example.com', False))
    """

    def __init__(
        self, spec: IdentitySpec | None = None, *, types: Iterable[str] | None = None,
        default_region: str | None = None,
    ) -> None:
        self.spec = spec if spec is not None else IdentitySpec()
        self.types = tuple(types) if types is not None else tuple(self.spec.types)
        self.default_region = default_region if default_region is not None else self.spec.default_phone_region
        if self.default_region not in PHONE_REGIONS:
            raise ConfigError(
                f"expected an ISO 3166-1 region code such as 'US' or 'IT', got {self.default_region!r} - at "
                "`default_region`"
            )
        self.on = self.spec.rules
        specs = {s.name: s for s in DEFAULT_IDENTIFIERS}
        specs.update({s.name: s for s in self.spec.identifiers})
        self._specs = specs
        self._global_blocked = frozenset(v.strip().lower() for v in self.spec.blocked)
        self._global_patterns = tuple(self.spec.blocked_patterns)
        # limited types get a count slot in spec order (stable across restarts)
        self.slot_of: dict[str, int] = {}
        for s in (*DEFAULT_IDENTIFIERS, *self.spec.identifiers):
            s = specs[s.name]
            if s.max_per_profile > 0 and s.name not in self.slot_of and self.on:
                self.slot_of[s.name] = len(self.slot_of)
        self.slot_limits = [0] * len(self.slot_of)
        for name, slot in self.slot_of.items():
            self.slot_limits[slot] = specs[name].max_per_profile
        self._code = {t: i for i, t in enumerate(self.types)}
        self._rules: list[TypeRule] = [self.rule_for(t) for t in self.types]

    # ------------------------------------------------------------------ rules
    def rule_for(self, id_type: str) -> TypeRule:
        """The compiled rule of ``id_type`` (configured, default or plain id)."""
        s = self._specs.get(id_type)
        if s is None:
            s = IdentifierSpec(name=id_type)
        pats = (*self._global_patterns, *s.blocked_patterns) if self.on else ()
        blocked = (self._global_blocked | {v.strip().lower() for v in s.blocked}) if self.on else frozenset()
        return TypeRule(
            name=id_type, kind=s.kind, provider_rules=s.provider_rules,
            priority=s.priority if self.on else 0, limit=s.max_per_profile if self.on else 0,
            ttl_minutes=round(s.ttl_days * MINUTES_PER_DAY) if s.ttl_days else 0,
            blocked=frozenset(blocked), pattern=re.compile("|".join(f"(?:{p})" for p in pats)) if pats else None,
        )

    def code_of(self, id_type: str) -> int | None:
        """The type's code, or None when it has none yet."""
        return self._code.get(id_type)

    def register(self, id_type: str) -> int:
        """The type's code, giving it the next one when new (at most 127 types)."""
        code = self._code.get(id_type)
        if code is None:
            code = len(self.types)
            self.types = (*self.types, id_type)
            self._code[id_type] = code
            self._rules.append(self.rule_for(id_type))
        return code

    def rule(self, code: int) -> TypeRule:
        return self._rules[code]

    # ------------------------------------------------------------------ values
    def canonical(self, id_type: str, value: str, rule: TypeRule | None = None) -> tuple[str, bool]:
        """Normalised value and whether the rules block it.

        Raises
        ------
        SchemaError
            If the value is malformed for its type (and not a blocked placeholder).
        ConfigError
            If a phone number comes and the ``phonenumbers`` package is not installed.
        """
        if rule is None:
            code = self._code.get(id_type)
            rule = self._rules[code] if code is not None else self.rule_for(id_type)
        if rule.blocked:
            light = value.strip().lower()
            if light in rule.blocked:
                return light, True
        try:
            v = normalise(id_type, value, default_region=self.default_region, kind=rule.kind,
                          provider_rules=rule.provider_rules)
        except SchemaError:
            if rule.kind == "phone" and rule.pattern is not None and not CONTROL.search(value):
                rough = "+" + _NON_DIGIT.sub("", value)
                if rule.pattern.search(rough):  # a placeholder number: blocked, not refused
                    return rough, True
            raise
        if rule.blocked and v.lower() in rule.blocked:
            return v.lower(), True
        if rule.pattern is not None and rule.pattern.search(v):
            return v, True
        return v, False

    def blocked_values(self, code: int) -> list[str]:
        """Exact blocked values of a type (stored as blocked keys in the graph)."""
        return sorted(self._rules[code].blocked)

    # ------------------------------------------------------------------ kernel arrays
    def trules(self) -> np.ndarray:
        """int64[128, 4]: priority, limit slot (-1 none) and time-to-live (minutes) per code."""
        out = np.zeros((N_TYPES, 4), dtype=np.int64)
        out[:, 1] = -1
        for code, r in enumerate(self._rules):
            out[code, 0] = r.priority
            out[code, 1] = self.slot_of.get(r.name, -1)
            out[code, 2] = r.ttl_minutes
        return out

    def fill_meta(self, meta: np.ndarray, *, p_rules: int, p_cap: int, p_slots: int, p_limit: int) -> None:
        """Write the rule parameters into the kernel's ``meta`` array."""
        meta[p_rules] = 1 if self.on else 0
        meta[p_cap] = self.spec.max_identifiers if self.on else 0
        meta[p_slots] = len(self.slot_of)
        for s, lim in enumerate(self.slot_limits):
            meta[p_limit + s] = lim
