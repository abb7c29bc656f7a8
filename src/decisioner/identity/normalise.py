"""Identifier normalisation: the same person's identifier always hashes to the same key.

* ``email``: trimmed and lower-cased;
* ``phone``: digits only, E.164 with the default country code when no ``+``/country is given
  (a leading ``00`` is read as ``+``, a single leading trunk ``0`` is replaced by the country
  code);
* anything else (cookies, user ids, CRM ids): trimmed.

Control characters are rejected everywhere: they are never part of a real identifier.
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import SchemaError

__all__ = ["normalise"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_NON_DIGIT: Final = re.compile(r"\D")


def normalise(id_type: str, value: str, *, default_region: str = "1") -> str:
    """Return the canonical form of ``value`` for identifier type ``id_type``.

    Raises
    ------
    SchemaError
        If the value is empty after normalisation or holds control characters.

    Examples
    --------
    >>> normalise("email", "  Ada.Lovelace@Example.COM ")
    'ada.lovelace@example.com'
    >>> normalise("phone", "(555) 123-4567")
    '+15551234567'
    """
    if _CONTROL.search(value):
        raise SchemaError(
            f"Expected an identifier without control characters, got {value[:32]!r} - at `$.ids.{id_type}`"
        )
    v = value.strip()
    if id_type == "email":
        v = v.lower()
        if v.count("@") != 1 or v.startswith("@") or v.endswith("@"):
            raise SchemaError(f"Expected an email address, got {value[:64]!r} - at `$.ids.email`")
    elif id_type == "phone":
        plus = v.startswith("+")
        digits = _NON_DIGIT.sub("", v)
        raw_digits = len(digits)
        if not plus and digits.startswith("00"):  # international call prefix: 00 <country> ...
            digits, plus = digits[2:], True
        if not plus:
            if digits.startswith("0"):  # national trunk prefix: no E.164 number starts with 0
                digits = default_region + digits[1:]
            elif len(digits) <= 10:  # a national number: add the default country code
                digits = default_region + digits
        if not (6 <= raw_digits <= 15 and 6 <= len(digits) <= 15):
            raise SchemaError(
                f"Expected a phone number of 6 to 15 digits, got {value[:32]!r} - at `$.ids.phone`"
            )
        v = "+" + digits
    if not v:
        raise SchemaError(f"Expected a non-empty identifier, got {value!r} - at `$.ids.{id_type}`")
    return v
