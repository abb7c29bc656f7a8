"""Identifier normalisation: the same person's identifier always hashes to the same key.

* ``email``: trimmed and lower-cased; with provider rules, the dots and ``+tag`` of Gmail
  addresses (``googlemail.com`` becomes ``gmail.com``) and the ``+tag`` of Outlook, Hotmail,
  Live, iCloud, Fastmail and Proton addresses are dropped (those providers deliver every such
  variant to one mailbox);
* ``phone``: E.164 (``+`` country code and national number, digits only) by libphonenumber's
  rules (the optional ``phonenumbers`` package, ``pip install "decisioner[phone]"``, imported on
  the first phone number): a number without ``+`` is read as dialled in the default region (an
  ISO 3166-1 code such as ``"US"`` or ``"IT"``; that region's international prefix, ``011`` in
  the US or ``00`` in Italy, is understood, and so is its trunk prefix), letters of vanity numbers
  become digits and an extension is dropped. A number libphonenumber cannot parse or does not
  hold valid for its region is an error, so ``06 1234 5678`` in Italy and ``+39 06 1234 5678``
  are one key, and a typo is refused rather than stored as a second person's number;
* ``lower``: trimmed and lower-cased;
* anything else (cookies, user ids, CRM ids): trimmed.

The normaliser of a type is its name (``email``, ``phone``) unless ``kind`` says otherwise.

Control characters are rejected everywhere: they are never part of a real identifier.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Final

from ..errors import ConfigError, SchemaError

__all__ = ["CONTROL", "normalise", "normalise_phone", "provider_canonical", "warm_up_phones"]

#: characters never part of a real identifier
CONTROL: Final = re.compile(r"[\x00-\x1f\x7f]")
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


def _phonenumbers(id_type: str) -> ModuleType:
    """The ``phonenumbers`` module, imported on first use (``import decisioner`` never does)."""
    try:
        import phonenumbers
    except ImportError:
        raise ConfigError(
            f"expected the `phonenumbers` package to normalise phone numbers, got it not installed - at "
            f'`$.ids.{id_type}` (pip install "decisioner[phone]")'
        ) from None
    return phonenumbers


def normalise_phone(value: str, region: str = "US", *, id_type: str = "phone") -> str:
    """The E.164 form of a phone number, read as dialled in ``region`` when it has no ``+``.

    Raises
    ------
    SchemaError
        If libphonenumber cannot parse the number or does not hold it valid.
    ConfigError
        If the ``phonenumbers`` package is not installed.

    Examples
    --------
    >>> normalise_phone("06 1234 5678", "IT") == normalise_phone("+39 06 1234 5678") == "+390612345678"
    True
    """
    pn = _phonenumbers(id_type)
    try:
        number = pn.parse(value, region)
    except pn.NumberParseException:
        number = None
    if number is None or not pn.is_valid_number(number):
        raise SchemaError(
            f"Expected a valid phone number (with +country code, or national in region {region!r}), got "
            f"{value[:32]!r} - at `$.ids.{id_type}`"
        )
    e164: str = pn.format_number(number, pn.PhoneNumberFormat.E164)
    return e164


def warm_up_phones(region: str = "US") -> bool:
    """Import ``phonenumbers`` and load ``region``'s metadata now, if the package is installed
    (the first phone number would pay it: about 45 ms); False when it is not installed.

    >>> warm_up_phones("IT") in (True, False)
    True
    """
    try:
        normalise_phone("+12025550123", region)
    except ConfigError:
        return False
    return True


def normalise(
    id_type: str, value: str, *, default_region: str = "US", kind: str | None = None,
    provider_rules: bool = False,
) -> str:
    """Return the canonical form of ``value`` for identifier type ``id_type``.

    ``kind`` names the normaliser (``email``, ``phone``, ``lower``, ``id``; default: by the type
    name); ``provider_rules`` applies :func:`provider_canonical` to email addresses;
    ``default_region`` is the ISO 3166-1 region of phone numbers without ``+``.

    Raises
    ------
    SchemaError
        If the value is empty after normalisation, holds control characters, or is not a valid
        value of its kind (an email address without one ``@``, a phone number libphonenumber does
        not hold valid).
    ConfigError
        If a phone number comes and the ``phonenumbers`` package is not installed.

    Examples
    --------
    >>> normalise("email", "  Ada.Lovelace@Example.COM ")
    'ada.lovelace@example.com'
    >>> normalise("phone", "(202) 555-0123")
    '+12025550123'
    """
    if CONTROL.search(value):
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
    elif kind == "phone" and v:
        v = normalise_phone(v, default_region, id_type=id_type)
    if not v:
        raise SchemaError(f"Expected a non-empty identifier, got {value!r} - at `$.ids.{id_type}`")
    return v
