"""Named segments: ``[segments]`` maps a name to a segment expression
(:mod:`decisioner.segments.parser`), e.g. ``vip = 'ltv > 500 and days_since("purchase") <= 30'``.

The syntax of each is checked here; names (attributes, functions, other segments) resolve when
an engine compiles them against its stores, which also refuses cycles
(``segment("a")`` inside ``a``, directly or through others).

>>> check_segments({"vip": "ltv >"})
Traceback (most recent call last):
...
decisioner.errors.ConfigError: Expected a value after '>', got end of input - at position 5 of the segment \
`segments.vip`
"""

from __future__ import annotations

import re
from typing import Final

from ..errors import SchemaError
from ..segments.parser import parse
from ._spec import check

__all__ = ["check_segments", "MAX_SEGMENTS"]

#: most named segments in a configuration
MAX_SEGMENTS: Final = 1000
_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_\-]{0,63}")


def check_segments(segments: dict[str, str]) -> None:
    """Every name well formed and every expression a segment (its syntax only)."""
    check(len(segments) <= MAX_SEGMENTS, f"expected at most {MAX_SEGMENTS} segments, got {len(segments)}")
    for name, expr in segments.items():
        check(
            bool(_NAME.fullmatch(name)) and "__" not in name,
            f"expected a segment name of letters, digits, '_' and '-' (at most 64), got {name[:80]!r} in `segments`",
        )
        try:
            parse(expr)
        except SchemaError as exc:
            check(False, f"{exc} `segments.{name}`")
