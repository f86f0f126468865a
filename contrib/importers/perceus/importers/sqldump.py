"""MySQL dumps read the way mysql reads them: statements, CREATE TABLE column lists, INSERT value tuples."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from perceus.importers.records import Collector
from perceus.importers.source import Source

_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}
_WORD = re.compile(r"[A-Za-z0-9_$.+\-]+")
_NOT_COLUMNS = {"primary", "key", "unique", "index", "constraint", "foreign", "fulltext", "spatial", "check"}


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | ident | punct
    text: str
    line: int


@dataclass
class Row:
    """One INSERT tuple: values by lower-case column name, and the lines it spans."""

    first: int
    last: int
    values: dict[str, str | None]


@dataclass
class Dump:
    """Every table's rows in dump order, by lower-case table name."""

    rows: dict[str, list[Row]] = field(default_factory=dict)


class _Lexer:
    def __init__(self, src: Source, out: Collector) -> None:
        self.text = src.text
        self.src = src
        self.out = out
        self.pos = 0
        self.line = 1

    def _advance_to(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def _quoted(self, quote: str) -> str | None:
        """A quoted string or identifier from just after its quote; None when the file ends inside it."""
        text, i, parts = self.text, self.pos + 1, []
        while i < len(text):
            ch = text[i]
            if ch == "\\" and quote != "`" and i + 1 < len(text):
                parts.append(_ESCAPES.get(text[i + 1], text[i + 1]))
                i += 2
            elif ch == quote:
                if text[i + 1 : i + 2] == quote:  # doubled quote
                    parts.append(quote)
                    i += 2
                else:
                    self._advance_to(i + 1)
                    return "".join(parts)
            else:
                parts.append(ch)
                i += 1
        return None

    def tokens(self) -> list[Token]:
        text, out = self.text, []
        while self.pos < len(text):
            ch = text[self.pos]
            if ch.isspace():
                self._advance_to(self.pos + 1)
            elif text.startswith("--", self.pos) or ch == "#":
                end = text.find("\n", self.pos)
                self._advance_to(len(text) if end < 0 else end)
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    self.out.error(self.src.at(self.line), "truncated input: comment never closed")
                    break
                self._advance_to(end + 2)
            elif ch in "'\"`":
                line = self.line
                value = self._quoted(ch)
                if value is None:
                    self.out.error(self.src.at(line), "truncated input: string never closed")
                    break
                out.append(Token("ident" if ch == "`" else "string", value, line))
            elif (match := _WORD.match(text, self.pos)) is not None:
                out.append(Token("word", match.group(), self.line))
                self._advance_to(match.end())
            else:
                out.append(Token("punct", ch, self.line))
                self._advance_to(self.pos + 1)
        return out


def _statements(tokens: list[Token]) -> tuple[list[list[Token]], list[Token]]:
    """Complete statements, and the tokens of an unfinished last one (a truncated dump)."""
    statements: list[list[Token]] = []
    current: list[Token] = []
    for tok in tokens:
        if tok.kind == "punct" and tok.text == ";":
            if current:
                statements.append(current)
            current = []
        else:
            current.append(tok)
    return statements, current


def _groups(tokens: list[Token], start: int) -> tuple[list[list[Token]], int]:
    """The comma-separated items of the parenthesised list at `start`, and the index after it."""
    items: list[list[Token]] = [[]]
    depth, i = 0, start
    while i < len(tokens):
        tok = tokens[i]
        if tok.kind == "punct" and tok.text == "(":
            depth += 1
            if depth > 1:
                items[-1].append(tok)
        elif tok.kind == "punct" and tok.text == ")":
            depth -= 1
            if depth == 0:
                return items, i + 1
            items[-1].append(tok)
        elif tok.kind == "punct" and tok.text == "," and depth == 1:
            items.append([])
        else:
            items[-1].append(tok)
        i += 1
    return items, i


def _name(tok: Token) -> str:
    return tok.text.rsplit(".", 1)[-1].lower()


def _value(item: list[Token]) -> str | None:
    if not item:
        return ""
    if len(item) == 1 and item[0].kind == "word" and item[0].text.upper() == "NULL":
        return None
    strings = [t.text for t in item if t.kind == "string"]  # _binary 'x', N'x', 'a' 'b'
    return "".join(strings) if strings else "".join(t.text for t in item)


def read_dump(src: Source, out: Collector) -> Dump:
    """All INSERT rows; column names come from the INSERT's own list or the table's CREATE TABLE."""
    dump = Dump()
    columns: dict[str, list[str]] = {}
    statements, unfinished = _statements(_Lexer(src, out).tokens())
    if unfinished:
        out.error(src.at(unfinished[0].line, unfinished[-1].line), "truncated input: statement without ';'")
    for stmt in statements:
        words = [t.text.upper() if t.kind == "word" else "" for t in stmt[:6]]
        if words[:2] == ["CREATE", "TABLE"]:
            at = 2
            while at < len(stmt) and stmt[at].kind == "word" and stmt[at].text.upper() in ("IF", "NOT", "EXISTS"):
                at += 1
            if at >= len(stmt):
                continue
            table = _name(stmt[at])
            items, _ = _groups(stmt, at + 1)
            columns[table] = [
                item[0].text.lower() for item in items if item and item[0].text.lower() not in _NOT_COLUMNS
            ]
        elif words[:1] in (["INSERT"], ["REPLACE"]):
            at = next((i for i, t in enumerate(stmt) if t.kind == "word" and t.text.upper() == "INTO"), -1) + 1
            if at <= 0 or at >= len(stmt):
                continue
            table = _name(stmt[at])
            at += 1
            cols = columns.get(table)
            if at < len(stmt) and stmt[at].text == "(":
                names, at = _groups(stmt, at)
                cols = [item[0].text.lower() for item in names if item]
            if cols is None:
                out.error(src.at(stmt[0].line), f"INSERT into {table} without a column list or CREATE TABLE")
                continue
            while at < len(stmt) and not (stmt[at].kind == "punct" and stmt[at].text == "("):
                at += 1  # VALUES / VALUE keyword
            while at < len(stmt):
                first = stmt[at].line
                items, at = _groups(stmt, at)
                last = stmt[min(at, len(stmt)) - 1].line
                values = [_value(item) for item in items]
                if len(values) != len(cols):
                    out.error(src.at(first, last), f"{table} row has {len(values)} values for {len(cols)} columns")
                else:
                    dump.rows.setdefault(table, []).append(Row(first, last, dict(zip(cols, values, strict=True))))
                while at < len(stmt) and stmt[at].text != "(":
                    at += 1
    return dump
