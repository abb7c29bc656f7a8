"""Identity specs: the rules of each identifier type (normaliser, uniqueness, limits,
priority, expiry, blocked values) and where the hashing secret comes from."""

from __future__ import annotations

import math
import re
from typing import Annotated, Final, Literal

from msgspec import Meta, Struct

from ..errors import ConfigError
from ._spec import SPEC, check

__all__ = [
    "DEFAULT_BLOCKED",
    "DEFAULT_EMAIL_PATTERNS",
    "DEFAULT_PHONE_PATTERNS",
    "PHONE_REGIONS",
    "IdentifierSpec",
    "DEFAULT_IDENTIFIERS",
    "IdentitySpec",
]

#: Placeholder values that identify nobody, for every identifier type. Compared after trimming
#: and lower-casing, before format checks (so ``"null"`` in an email field is blocked, not an
#: error).
DEFAULT_BLOCKED: Final[tuple[str, ...]] = (
    "null", "nil", "none", "undefined", "n/a", "na", "nan", "0", "-1", "-", "unknown", "test",
    "anonymous", "[object object]", "false", "true", "00000000-0000-0000-0000-000000000000",
    "test@test.com", "test@example.com", "none@none.com", "no@email.com", "email@email.com",
    "asdf@asdf.com", "noemail@noemail.com",
)
#: Junk local parts of email addresses (regular expression, searched in the normalised value).
DEFAULT_EMAIL_PATTERNS: Final[tuple[str, ...]] = (
    r"^(?:test|tester|testing|null|none|nil|noemail|no-?mail|no-?reply|donotreply|do-not-reply"
    r"|nobody|fake|unknown|undefined|n/?a|asdf+|qwerty|x{3,}|abc)@",
)
#: Phone numbers of one repeated digit or a counting sequence after the country code.
DEFAULT_PHONE_PATTERNS: Final[tuple[str, ...]] = (r"^\+\d{0,3}(\d)\1{6,}$", r"^\+\d{0,3}0?123456789\d?$")


#: ISO 3166-1 region codes a default phone region may take: the regions of libphonenumber's
#: metadata (``phonenumbers.SUPPORTED_REGIONS``; a test keeps them in step), written out so that
#: configuration is checked without importing ``phonenumbers``.
_REGION_CODES: Final = """
    AC AD AE AF AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS
    BT BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG
    EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GT GU GW GY HK HN HR HT
    HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR
    LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF
    NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD
    SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TA TC TD TG TH TJ TK TL TM TN TO TR TT TV TW
    TZ UA UG US UY UZ VA VC VE VG VI VN VU WF WS XK YE YT ZA ZM ZW
"""
PHONE_REGIONS: Final[frozenset[str]] = frozenset(_REGION_CODES.split())


def _check_patterns(patterns: tuple[str, ...], at: str) -> None:
    for pat in patterns:
        try:
            re.compile(pat)
        except re.error as exc:
            raise ConfigError(f"expected a regular expression, got {pat!r} ({exc}){at}") from None


class IdentifierSpec(Struct, **SPEC):
    """Rules of one identifier type.

    ``normaliser``: ``email`` (trim, lower-case, check the shape; ``provider_rules`` also drops
    the dots and ``+tag`` of Gmail addresses and the ``+tag`` of Outlook/iCloud/Fastmail/Proton
    ones), ``phone`` (E.164 with the default region), ``lower`` (trim, lower-case) or ``id``
    (trim); None picks ``email``/``phone`` by name and ``id`` otherwise. ``unique``: a person
    holds at most one value (user id, CRM id); ``limit``: at most that many values per person (0:
    no limit). A merge breaking either is refused. ``priority``: the highest-priority identifier
    of an event is its anchor (the profile the event resolves to). ``ttl_days``: volatile ids
    (cookies) not seen for that long are dropped by :func:`decisioner.privacy.expire`.
    ``blocked`` / ``blocked_patterns``: values of this type that never link (exact, compared
    trimmed and lower-cased; regular expressions searched in the normalised value).

    >>> IdentifierSpec(name="user_id", unique=True, priority=100).max_per_profile
    1
    """

    name: Annotated[str, Meta(min_length=1, max_length=128)]
    normaliser: Literal["email", "phone", "lower", "id"] | None = None
    provider_rules: bool = False
    unique: bool = False
    limit: Annotated[int, Meta(ge=0, le=65_535)] = 0
    priority: Annotated[int, Meta(ge=-1_000_000, le=1_000_000)] = 0
    ttl_days: Annotated[float, Meta(gt=0.0, le=36_500.0)] | None = None
    blocked: tuple[str, ...] = ()
    blocked_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        at = f" (identifier type {self.name!r})"
        check(0 <= self.limit <= 65_535, f"`limit` must be in [0, 65535], got {self.limit!r}{at}")
        check(
            not (self.unique and self.limit > 1),
            f"expected `limit` 0 or 1 for a `unique` type, got {self.limit!r}{at}",
        )
        check(
            -1_000_000 <= self.priority <= 1_000_000,
            f"`priority` must be in [-1000000, 1000000], got {self.priority!r}{at}",
        )
        check(
            self.ttl_days is None or (math.isfinite(self.ttl_days) and 0.0 < self.ttl_days <= 36_500.0),
            f"`ttl_days` must be in (0, 36500], got {self.ttl_days!r}{at}",
        )
        check(
            not self.provider_rules or self.kind == "email",
            f"expected `provider_rules` only on an email type, got normaliser {self.kind!r}{at}",
        )
        _check_patterns(self.blocked_patterns, at)

    @property
    def kind(self) -> str:
        """The normaliser actually used."""
        if self.normaliser is not None:
            return self.normaliser
        return self.name if self.name in ("email", "phone") else "id"

    @property
    def max_per_profile(self) -> int:
        """Values one profile may hold (0: no limit)."""
        return 1 if self.unique else self.limit


#: Default identifier rules: unique account ids, a few emails and phones per person, cookies
#: that expire after 400 days unseen (browsers cap cookie lifetimes there).
DEFAULT_IDENTIFIERS: Final[tuple[IdentifierSpec, ...]] = (
    IdentifierSpec(name="user_id", unique=True, priority=100),
    IdentifierSpec(name="crm_id", unique=True, priority=90),
    IdentifierSpec(name="email", limit=5, priority=60, blocked_patterns=DEFAULT_EMAIL_PATTERNS),
    IdentifierSpec(name="phone", limit=5, priority=50, blocked_patterns=DEFAULT_PHONE_PATTERNS),
    IdentifierSpec(name="device", limit=20, priority=20),
    IdentifierSpec(name="cookie", limit=100, priority=10, ttl_days=400.0),
)


class IdentitySpec(Struct, **SPEC):
    """Where the hashing secret comes from, the identifier types and the merge rules.

    ``hash_key`` is a hex string (16 to 64 bytes); if absent, the environment variable named
    by ``hash_key_env`` is read. Types not listed in ``types`` or ``identifiers`` are accepted
    and normalised as plain ids (trimmed), with no limit and priority 0. ``rules`` off turns
    every merge rule off (blocked values, limits, the size cap): plain connected components.
    ``max_identifiers`` caps a component (0: no cap). ``max_types`` caps the identifier types
    (configured and first seen in accepted events together; at most 127). ``blocked`` and ``blocked_patterns``
    apply to every type. ``identifiers`` listed here replace the default rules of the same name
    (:data:`DEFAULT_IDENTIFIERS`); default types not listed keep theirs. ``default_phone_region``
    is the ISO 3166-1 region (upper case, one of :data:`PHONE_REGIONS`) whose numbering plan reads
    a phone number written without ``+``: ``"US"``, ``"IT"``, ``"GB"`` ... (a calling code such as
    ``"1"``, accepted before issue 11, is refused with a message saying so).
    """

    hash_key: str | None = None
    hash_key_env: str | None = "DECISIONER_HASH_KEY"
    types: tuple[str, ...] = ("cookie", "device", "email", "user_id", "crm_id", "phone")
    default_phone_region: str = "US"
    identifiers: tuple[IdentifierSpec, ...] = DEFAULT_IDENTIFIERS
    rules: bool = True
    max_identifiers: Annotated[int, Meta(ge=0, le=2_000_000_000)] = 1000
    max_types: Annotated[int, Meta(ge=1, le=127)] = 127
    blocked: tuple[str, ...] = DEFAULT_BLOCKED
    blocked_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        at = ""
        names = [s.name for s in self.identifiers]
        check(len(set(names)) == len(names), f"expected unique identifier names, got {names!r}{at}")
        limited = [s.name for s in self.identifiers if s.max_per_profile > 0]
        check(len(limited) <= 16, f"expected at most 16 limited identifier types, got {len(limited)}{at}")
        n_types = len(set(self.types) | set(names))
        check(
            1 <= self.max_types <= 127, f"`max_types` must be in [1, 127], got {self.max_types!r}{at}"
        )
        check(
            n_types <= self.max_types,
            f"expected at most {self.max_types} identifier types (`max_types`), got {n_types}{at}",
        )
        check(
            0 <= self.max_identifiers <= 2_000_000_000,
            f"`max_identifiers` must be in [0, 2000000000], got {self.max_identifiers!r}{at}",
        )
        region = self.default_phone_region
        check(
            region in PHONE_REGIONS,
            f"expected an ISO 3166-1 region code such as 'US' or 'IT', got {region!r} for `default_phone_region`"
            + (
                " (a calling code is no longer accepted: one code can cover several regions with different "
                "numbering plans, 1 is US, CA and 23 more; write the region)"
                if region.lstrip("+").isdigit() else ""
            ),
        )
        _check_patterns(self.blocked_patterns, at)
