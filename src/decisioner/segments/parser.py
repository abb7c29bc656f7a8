"""The segment language: a tokenizer and a recursive-descent parser of our own.

Nothing is ever evaluated by Python: no ``eval``, no ``ast``, no attribute access, no calls but
the few functions the compiler knows (:mod:`decisioner.segments.compile`). The grammar::

    segment   := or
    or        := and ("or" and)*
    and       := unary ("and" unary)*
    unary     := "not" unary | test
    test      := operand [cmp value | "in" list | "not" "in" list | "startswith" STRING]
    operand   := "(" segment ")" | NAME | NAME "(" args ")"
    args      := arg ("," arg)*          arg := value | NAME "=" NUMBER
    cmp       := "==" | "!=" | "<" | "<=" | ">" | ">="
    value     := STRING | NUMBER          (a number may start with "-")
    list      := "[" value ("," value)* "]"

Keywords (``and or not in startswith``) are lower case; names are ASCII letters, digits and
``_`` not starting with a digit, and never contain ``__`` (no dunder names). Strings take
double or single quotes with ``\\"``, ``\\'`` and ``\\\\`` escapes. Numbers are decimal
(``12``, ``-0.5``, ``1e3``), at most :data:`MAX_NUMBER_CHARS` characters and finite.

Limits, each a :class:`~decisioner.errors.SchemaError` before anything else happens: a segment
of at most :data:`MAX_CHARS` characters, strings of at most :data:`MAX_STRING_CHARS`, nesting
(parentheses and ``not``) at most :data:`MAX_DEPTH` deep (an explicit counter, so no input can
reach Python's recursion limit), at most :data:`MAX_TESTS` tests and :data:`MAX_LIST` values in
a list. Errors name what was expected, what came and the position (0-based character offset):
``Expected a value after '>=', got end of input - at position 7 of the segment``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

from ..errors import SchemaError

__all__ = [
    "parse", "Name", "Call", "Compare", "InList", "StartsWith", "Truth", "And", "Or", "Not", "Node", "Operand",
    "MAX_CHARS", "MAX_DEPTH", "MAX_TESTS", "MAX_LIST", "MAX_STRING_CHARS", "MAX_NUMBER_CHARS",
]

MAX_CHARS: Final = 4096
MAX_STRING_CHARS: Final = 256
MAX_NUMBER_CHARS: Final = 32
MAX_DEPTH: Final = 32
MAX_TESTS: Final = 64
MAX_LIST: Final = 1000
KEYWORDS: Final = frozenset({"and", "or", "not", "in", "startswith"})
CMP_OPS: Final = ("==", "!=", "<", "<=", ">", ">=")

Value = str | float


@dataclass(frozen=True)
class Name:
    """A column by name (a declared attribute, ``tier``)."""

    name: str
    pos: int


@dataclass(frozen=True)
class Call:
    """A function of the language: positional ``args`` and keyword ``kwargs``."""

    name: str
    args: tuple[Value, ...]
    kwargs: tuple[tuple[str, float], ...]
    pos: int


Operand = Name | Call


@dataclass(frozen=True)
class Compare:
    operand: Operand
    op: str
    value: Value
    pos: int


@dataclass(frozen=True)
class InList:
    operand: Operand
    values: tuple[Value, ...]
    pos: int


@dataclass(frozen=True)
class StartsWith:
    operand: Operand
    prefix: str
    pos: int


@dataclass(frozen=True)
class Truth:
    """An operand used as a test on its own (``consent("marketing")``, ``segment("vip")``)."""

    operand: Operand
    pos: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | InList | StartsWith | Truth | And | Or | Not


@dataclass(frozen=True)
class _Tok:
    kind: str  # "name", "str", "num", "op", "end"
    text: str
    value: Value
    pos: int


_DIGITS: Final = "0123456789"
_PUNCT: Final = ("==", "!=", "<=", ">=", "<", ">", "(", ")", "[", "]", ",", "=")


def _fail(expected: str, got: str, pos: int) -> SchemaError:
    return SchemaError(f"Expected {expected}, got {got} - at position {pos} of the segment")


def _shown(tok: _Tok) -> str:
    if tok.kind == "end":
        return "end of input"
    if tok.kind == "str":
        return "a string"
    return repr(tok.text[:40])


def _is_name_start(c: str) -> bool:
    return c == "_" or ("a" <= c <= "z") or ("A" <= c <= "Z")


def _is_name_char(c: str) -> bool:
    return _is_name_start(c) or ("0" <= c <= "9")


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t\r\n":
            i += 1
            continue
        if _is_name_start(c):
            j = i
            while j < n and _is_name_char(text[j]):
                j += 1
            word = text[i:j]
            if "__" in word:
                raise _fail("a name without '__' (no dunder names)", repr(word[:40]), i)
            if j < n and text[j] == ".":
                raise _fail("an operator or a parenthesis (there is no attribute access)", "'.'", j)
            out.append(_Tok("name", word, word, i))
            i = j
            continue
        if c in _DIGITS or (c == "-" and i + 1 < n and (text[i + 1] in _DIGITS or text[i + 1] == ".")) or (
            c == "." and i + 1 < n and text[i + 1] in _DIGITS
        ):
            j = i + 1
            while j < n and (text[j] in _DIGITS or text[j] in ".eE" or (text[j] in "+-" and text[j - 1] in "eE")):
                j += 1
            lit = text[i:j]
            if j - i > MAX_NUMBER_CHARS:
                raise _fail(f"a number of at most {MAX_NUMBER_CHARS} characters", f"{j - i} characters", i)
            try:
                v = float(lit)
            except ValueError:
                raise _fail("a number", repr(lit), i) from None
            if not math.isfinite(v):
                raise _fail("a finite number", repr(lit), i)
            if j < n and (_is_name_char(text[j]) or text[j] == "."):
                raise _fail("an operator after a number", repr(text[j]), j)
            out.append(_Tok("num", lit, v, i))
            i = j
            continue
        if c in "\"'":
            j, buf = i + 1, []
            while True:
                if j >= n:
                    raise _fail(f"a closing {c} of the string opened at position {i}", "end of input", n)
                d = text[j]
                if d == c:
                    break
                if d == "\\":
                    if j + 1 >= n or text[j + 1] not in "\\\"'":
                        raise _fail("an escape \\\\, \\\" or \\'", repr(text[j:j + 2]), j)
                    d = text[j + 1]
                    j += 1
                buf.append(d)
                j += 1
                if len(buf) > MAX_STRING_CHARS:
                    raise _fail(f"a string of at most {MAX_STRING_CHARS} characters", "a longer one", i)
            s = "".join(buf)
            out.append(_Tok("str", text[i:j + 1], s, i))
            i = j + 1
            continue
        for p in _PUNCT:
            if text.startswith(p, i):
                out.append(_Tok("op", p, p, i))
                i += len(p)
                break
        else:
            raise _fail("a name, a value, an operator or a parenthesis", repr(c), i)
    out.append(_Tok("end", "", "", n))
    return out


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.depth = 0
        self.tests = 0

    @property
    def tok(self) -> _Tok:
        return self.toks[self.i]

    def take(self) -> _Tok:
        t = self.toks[self.i]
        self.i += 1
        return t

    def at(self, kind: str, text: str | None = None) -> bool:
        t = self.tok
        return t.kind == kind and (text is None or t.text == text)

    def expect_op(self, text: str, after: str) -> _Tok:
        if not self.at("op", text):
            raise _fail(f"'{text}' {after}", _shown(self.tok), self.tok.pos)
        return self.take()

    def enter(self, pos: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(f"nesting at most {MAX_DEPTH} deep", "deeper nesting", pos)

    def segment(self) -> Node:
        items = [self.conj()]
        while self.at("name", "or"):
            self.take()
            items.append(self.conj())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def conj(self) -> Node:
        items = [self.unary()]
        while self.at("name", "and"):
            self.take()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Node:
        if self.at("name", "not"):
            t = self.take()
            self.enter(t.pos)
            node: Node = Not(self.unary())
            self.depth -= 1
            return node
        return self.test()

    def test(self) -> Node:
        t = self.tok
        if self.at("op", "("):
            self.take()
            self.enter(t.pos)
            node = self.segment()
            self.expect_op(")", f"to close the '(' at position {t.pos}")
            self.depth -= 1
            return node
        operand = self.operand()
        self.tests += 1
        if self.tests > MAX_TESTS:
            raise _fail(f"at most {MAX_TESTS} tests in a segment", "more", t.pos)
        nxt = self.tok
        if nxt.kind == "op" and nxt.text in CMP_OPS:
            self.take()
            return Compare(operand, nxt.text, self.value(f"after '{nxt.text}'"), nxt.pos)
        if nxt.kind == "op" and nxt.text == "=":
            raise _fail("'==' to compare", "'='", nxt.pos)
        if self.at("name", "in"):
            self.take()
            return InList(operand, self.values(), nxt.pos)
        if self.at("name", "not") and self.toks[self.i + 1].kind == "name" and self.toks[self.i + 1].text == "in":
            self.take()
            self.take()
            return Not(InList(operand, self.values(), nxt.pos))
        if self.at("name", "startswith"):
            self.take()
            v = self.tok
            if v.kind != "str":
                raise _fail("a string after 'startswith'", _shown(v), v.pos)
            self.take()
            assert isinstance(v.value, str)
            return StartsWith(operand, v.value, nxt.pos)
        return Truth(operand, t.pos)

    def operand(self) -> Operand:
        t = self.tok
        if t.kind != "name" or t.text in KEYWORDS:
            raise _fail("a name, a function or '('", _shown(t), t.pos)
        self.take()
        if not self.at("op", "("):
            return Name(t.text, t.pos)
        self.take()
        args: list[Value] = []
        kwargs: list[tuple[str, float]] = []
        if not self.at("op", ")"):
            while True:
                a = self.tok
                if a.kind == "name" and self.toks[self.i + 1].kind == "op" and self.toks[self.i + 1].text == "=":
                    self.take()
                    self.take()
                    v = self.tok
                    if v.kind != "num":
                        raise _fail(f"a number after '{a.text}='", _shown(v), v.pos)
                    self.take()
                    assert isinstance(v.value, float)
                    kwargs.append((a.text, v.value))
                elif kwargs:
                    raise _fail(f"a keyword argument after keyword arguments in {t.text}()", _shown(a), a.pos)
                else:
                    args.append(self.value(f"as an argument of {t.text}()"))
                if self.at("op", ","):
                    self.take()
                    continue
                break
        self.expect_op(")", f"to close {t.text}(")
        return Call(t.text, tuple(args), tuple(kwargs), t.pos)

    def value(self, where: str) -> Value:
        t = self.tok
        if t.kind not in ("str", "num"):
            raise _fail(f"a value {where}", _shown(t), t.pos)
        self.take()
        return t.value

    def values(self) -> tuple[Value, ...]:
        self.expect_op("[", "to open a list after 'in'")
        out = [self.value("in the list")]
        while self.at("op", ","):
            self.take()
            if len(out) >= MAX_LIST:
                raise _fail(f"at most {MAX_LIST} values in a list", "more", self.tok.pos)
            out.append(self.value("in the list"))
        self.expect_op("]", "to close the list")
        return tuple(out)


def parse(text: object) -> Node:
    """The syntax tree of a segment expression.

    Raises
    ------
    SchemaError
        If ``text`` is not a string, is empty, is over a limit or is not a segment.

    >>> parse('ltv > 100 and region in ["north", "east"]')  # doctest: +NORMALIZE_WHITESPACE
    And(items=(Compare(operand=Name(name='ltv', pos=0), op='>', value=100.0, pos=4),
               InList(operand=Name(name='region', pos=14), values=('north', 'east'), pos=21)))
    """
    if not isinstance(text, str):
        raise SchemaError(f"Expected a segment expression (a string), got {type(text).__name__} - at `segment`")
    if len(text) > MAX_CHARS:
        raise SchemaError(f"Expected a segment of at most {MAX_CHARS} characters, got {len(text)} - at `segment`")
    p = _Parser(_tokens(text))
    if p.at("end"):
        raise _fail("a segment", "end of input", 0)
    node = p.segment()
    if not p.at("end"):
        raise _fail("'and', 'or' or end of input", _shown(p.tok), p.tok.pos)
    return node
