"""Match error messages by the parts decisioner owns.

A ``SchemaError`` or ``ConfigError`` that wraps a msgspec error reads
``<our prefix>: <msgspec's words> - at `<path>` ``. The prefix is ours, and the path and the
facts in it (a field name, a limit declared in our schema, the value that came) come from our
schema and the input; the words between are msgspec's, and msgspec rewords them between releases
(0.23 reworded invalid UTF-8 and dropped its position). So tests match our own messages whole
and a wrapped one only by prefix, path and facts: the suite then passes on the locked msgspec
(``make test``) and on the newest one (``make test-latest``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Wrapped:  # not a tuple: tables tell it from (dict form, JSON form) pairs
    """A dependency's message inside our prefix, e.g. ``Wrapped("Invalid event", at="$.time")``."""

    prefix: str
    #: the path msgspec reports; None where it reports none (a problem at the top level)
    at: str | None = None
    #: facts that must appear somewhere after the prefix: a field name, a limit, the bad value
    mentions: tuple[str, ...] = ()


def full_match(msg: str | Wrapped) -> str:
    """The ``pytest.raises(match=...)`` pattern: our message whole, or a wrapped one by our parts."""
    if isinstance(msg, str):
        return "^" + re.escape(msg) + "$"
    facts = "".join(f"(?=.*{re.escape(m)})" for m in msg.mentions)
    where = re.escape(f" - at `{msg.at}`") if msg.at is not None else ""
    return f"^{re.escape(msg.prefix)}: {facts}.+{where}$"
