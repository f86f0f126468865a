"""JSON with comments (#, //, /* */), trailing commas and Kea's <?include "file"?>, tagged with lines."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from perceus.importers.records import Collector, Location
from perceus.importers.source import Source, load

_INCLUDE = re.compile(r'<\?include\s+"([^"]*)"\s*\?>')
_NUMBER = re.compile(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?")
_MAX_DEPTH = 16


class JsonError(Exception):
    """Invalid input at `where`."""

    def __init__(self, message: str, where: Location) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class _Tok:
    kind: str  # punct | string | atom
    value: object
    where: Location


@dataclass
class Node:
    """A JSON value with the lines it spans (within the file it starts in)."""

    value: object
    where: Location
    items: dict[str, Node] = field(default_factory=dict)
    elements: list[Node] = field(default_factory=list)

    def text(self, key: str) -> str:
        found = self.items.get(key)
        return found.value if found is not None and isinstance(found.value, str) else ""


def _lex(src: Source, out: Collector, stack: list[str]) -> list[_Tok]:
    text, i, line, toks = src.text, 0, 1, []
    stack.append(os.path.realpath(src.path))
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#" or text.startswith("//", i):
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise JsonError("truncated input: comment never closed", src.at(line))
            line += text.count("\n", i, end)
            i = end + 2
        elif (match := _INCLUDE.match(text, i)) is not None:
            toks.extend(_included(match.group(1), src, src.at(line), out, stack))
            i = match.end()
        elif ch == '"':
            end = i + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            if end >= len(text):
                raise JsonError("truncated input: string never closed", src.at(line))
            try:
                value = json.loads(text[i : end + 1])
            except ValueError as err:
                raise JsonError(f"bad string: {err}", src.at(line)) from None
            toks.append(_Tok("string", value, src.at(line)))
            line += text.count("\n", i, end)
            i = end + 1
        elif ch in "{}[]:,":
            toks.append(_Tok("punct", ch, src.at(line)))
            i += 1
        elif (match := _NUMBER.match(text, i)) is not None and match.end() > i:
            toks.append(_Tok("atom", match.group(), src.at(line)))
            i = match.end()
        elif text.startswith(("true", "false", "null"), i):
            word = next(w for w in ("true", "false", "null") if text.startswith(w, i))
            toks.append(_Tok("atom", {"true": True, "false": False, "null": None}[word], src.at(line)))
            i += len(word)
        else:
            raise JsonError(f"unexpected character {ch!r}", src.at(line))
    stack.pop()
    return toks


def _included(path: str, src: Source, where: Location, out: Collector, stack: list[str]) -> list[_Tok]:
    target = os.path.join(os.path.dirname(src.path), path)
    if os.path.realpath(target) in stack or len(stack) > _MAX_DEPTH:
        raise JsonError(f"include loop: {target}", where)
    try:
        child = load(target, out)
    except OSError as err:
        raise JsonError(f"missing include {target}: {err.strerror or err}", where) from None
    return _lex(child, out, stack)


class _Parser:
    def __init__(self, toks: list[_Tok], end: Location) -> None:
        self.toks, self.pos, self.end = toks, 0, end

    def _next(self) -> _Tok:
        if self.pos >= len(self.toks):
            raise JsonError("truncated input: JSON ends early", self.end)
        tok = self.toks[self.pos]
        self.pos += 1
        return tok

    def _peek_is(self, punct: str) -> bool:
        return self.pos < len(self.toks) and self.toks[self.pos].kind == "punct" and self.toks[self.pos].value == punct

    def value(self, depth: int = 0) -> Node:
        if depth > 200:
            raise JsonError("nested too deeply", self.end)
        tok = self._next()
        if tok.kind != "punct":
            return Node(tok.value, tok.where)
        if tok.value == "{":
            node = Node(None, tok.where)
            while not self._peek_is("}"):
                key = self._next()
                if key.kind != "string" or not self._next().value == ":":
                    raise JsonError('expected "key":', key.where)
                node.items[str(key.value)] = self.value(depth + 1)
                if not self._peek_is("}") and self._next().value != ",":
                    raise JsonError("expected ',' or '}'", self.toks[self.pos - 1].where)
            return self._close(node)
        if tok.value == "[":
            node = Node(None, tok.where)
            while not self._peek_is("]"):
                node.elements.append(self.value(depth + 1))
                if not self._peek_is("]") and self._next().value != ",":
                    raise JsonError("expected ',' or ']'", self.toks[self.pos - 1].where)
            return self._close(node)
        raise JsonError(f"unexpected {tok.value!r}", tok.where)

    def _close(self, node: Node) -> Node:
        closing = self._next()
        if closing.where.file == node.where.file:
            node.where = node.where.span(closing.where.line)
        return node


def parse_text(src: Source, out: Collector) -> Node:
    """The document's root value; raises JsonError (with file and line) for anything invalid."""
    toks = _lex(src, out, [])
    end = src.at(max(src.text.count("\n"), 1))
    parser = _Parser(toks, end)
    root = parser.value()
    if parser.pos < len(toks):
        raise JsonError("text after the end of the document", toks[parser.pos].where)
    return root
