"""Identifier normalisation: the same person's identifier always hashes to the same key.

* ``email``: trimmed and lower-cased; with provider rules, the dots and ``+tag`` of Gmail
  addresses (``googlemail.com`` becomes ``gmail.com``) and the ``+tag`` of Outlook, Hotmail,
  Live, iCloud, Fastmail and Proton addresses are dropped (those providers deliver every such
  variant to one mailbox);
* ``phone``: digits only, E.164 with the default country code when no ``+``/country is given
  (a leading ``00`` is read as ``+``, a single leading trunk ``0`` is replaced by the country
  code);
* ``lower``: trimmed and lower-cased;
* anything else (cookies, user ids, CRM ids): trimmed.

The normaliser of a type is its name (``email``, ``phone``) unless ``kind`` says otherwise.

Control characters are rejected everywhere: they are never part of a real identifier.
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import SchemaError

__all__ = ["normalise", "provider_canonical"]

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
_NON_DIGIT: Final = re.compile(r"\D")
#: providers that ignore dots in the local part and deliver ``+tag`` variants to the mailbox
_DOTS_AND_TAGS: Final = frozenset({"gmail.com", "googlemail.com"})
#: providers that deliver ``+tag`` variants to the mailbox
_TAGS: Final = frozenset(
    {"outlook.com", "hotmail.com", "live.com", "msn.com", "icloud.com", "me.com", "mac.com",
     "fastmail.com", "protonmail.com", "proton.me", "pm.me"}
)


def provider_canonical(email: str) -> str:
    """The mailbox a normalised email address delivers to, by the provider's own rules.

    >>> provider_canonical("ada.lovelace+news@googlemail.com")
    'adalovelace@gmail.com'
    >>> provider_canonical("ada+shop@outlook.com"), provider_canonical("ada.l+x@example.com")
    ('ada@outlook.com', 'ada.l+x@example.com')
    """
    local, _, domain = email.rpartition("@")
    if domain in _DOTS_AND_TAGS:
        local = local.split("+", 1)[0].replace(".", "")
        domain = "gmail.com"
    elif domain in _TAGS:
        local = local.split("+", 1)[0]
    if not local:
        return email
    return f"{local}@{domain}"


def normalise(
    id_type: str, value: str, *, default_region: str = "1", kind: str | None = None,
    provider_rules: bool = False,
) -> str:
    """Return the canonical form of ``value`` for identifier type ``id_type``.

    ``kind`` names the normaliser (``email``, ``phone``, ``lower``, ``id``; default: by the type
    name); ``provider_rules`` applies :func:`provider_canonical` to email addresses.

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
    if kind is None:
        kind = id_type if id_type in ("email", "phone") else "id"
    if kind == "email":
        v = v.lower()
        if v.count("@") != 1 or v.startswith("@") or v.endswith("@"):
            raise SchemaError(f"Expected an email address, got {value[:64]!r} - at `$.ids.{id_type}`")
        if provider_rules:
            v = provider_canonical(v)
    elif kind == "lower":
        v = v.lower()
    elif kind == "phone":
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
                f"Expected a phone number of 6 to 15 digits, got {value[:32]!r} - at `$.ids.{id_type}`"
            )
        v = "+" + digits
    if not v:
        raise SchemaError(f"Expected a non-empty identifier, got {value!r} - at `$.ids.{id_type}`")
    return v
