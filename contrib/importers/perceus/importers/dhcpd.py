"""ISC dhcpd.conf: tokenised into statements and blocks as dhcpd does, includes followed, hosts imported."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source, load, resolve_include

_SPECIALS = "{};,="
_MAX_INCLUDE_DEPTH = 16


@dataclass(frozen=True)
class _Token:
    text: str
    line: int
    quoted: bool = False


@dataclass
class _Statement:
    """`words ;` or `words { body }`; `last` is the line of the `;` or `}`."""

    words: list[_Token]
    first: int
    last: int
    body: list[_Statement] | None = None


@dataclass
class _Walk:
    out: Collector
    stack: list[str] = field(default_factory=list)


def _tokens(src: Source, out: Collector) -> list[_Token]:
    tokens: list[_Token] = []
    text, i, line = src.text, 0, 1
    while i < len(text):
        ch = text[i]
        if ch == "\n":
            line += 1
            i += 1
        elif ch.isspace():
            i += 1
        elif ch == "#":
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif ch == '"':
            start_line, i, chars = line, i + 1, []
            while i < len(text) and text[i] != '"':
                if text[i] == "\\" and i + 1 < len(text):
                    char, i = _escape(text, i + 1)
                    chars.append(char)
                    continue
                line += text[i] == "\n"
                chars.append(text[i])
                i += 1
            if i >= len(text):
                out.error(src.at(start_line), "truncated input: string never closed")
                return tokens
            tokens.append(_Token("".join(chars), start_line, quoted=True))
            i += 1
        elif ch in _SPECIALS:
            tokens.append(_Token(ch, line))
            i += 1
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIALS + '"#':
                i += 1
            tokens.append(_Token(text[start:i], line))
    return tokens


_C_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "a": "\a"}


def _escape(text: str, at: int) -> tuple[str, int]:
    """The character of the escape after a backslash at `at - 1` (dhcpd: octal \\ooo, \\xHH, C letters)."""
    octal = re.match(r"[0-7]{1,3}", text[at : at + 3])
    if octal is not None:
        return chr(int(octal.group(), 8) & 0xFF), at + len(octal.group())
    hexa = re.match(r"x([0-9A-Fa-f]{1,2})", text[at : at + 3])
    if hexa is not None:
        return chr(int(hexa.group(1), 16)), at + len(hexa.group())
    return _C_ESCAPES.get(text[at], text[at]), at + 1


def _block(tokens: list[_Token], at: int, src: Source, out: Collector, depth: int) -> tuple[list[_Statement], int]:
    """Statements from `at` up to the matching `}` (or the end at depth 0)."""
    body: list[_Statement] = []
    words: list[_Token] = []
    while at < len(tokens):
        tok = tokens[at]
        at += 1
        if tok.quoted:
            words.append(tok)
        elif tok.text == ";":
            if words:
                body.append(_Statement(words, words[0].line, tok.line))
            words = []
        elif tok.text == "{":
            inner, at = _block(tokens, at, src, out, depth + 1)
            first = words[0].line if words else tok.line
            body.append(_Statement(words, first, tokens[at - 1].line if at <= len(tokens) else tok.line, inner))
            words = []
        elif tok.text == "}":
            if depth == 0:
                out.error(src.at(tok.line), "'}' without a matching '{'")
                continue
            if words:
                out.error(src.at(words[0].line, tok.line), "statement without ';' before '}'")
            return body, at
        else:
            words.append(tok)
    if depth > 0:
        out.error(src.at(tokens[-1].line if tokens else 1), "truncated input: block never closed")
    elif words:
        out.error(src.at(words[0].line, words[-1].line), "truncated input: last statement has no ';'")
    return body, at


def _text(words: list[_Token], start: int = 0) -> str:
    return " ".join(w.text for w in words[start:])


def _host(stmt: _Statement, src: Source, out: Collector) -> None:
    """`host NAME { … }`: `option host-name` names the node when present (it is what the node is told)."""
    name = stmt.words[1].text if len(stmt.words) > 1 else ""
    where = src.at(stmt.first, stmt.last)
    mac = client_id = ip = ""
    for inner in stmt.body or []:
        w = [t.text.lower() if not t.quoted else t.text for t in inner.words]
        if w[:2] == ["option", "host-name"] and len(w) >= 3:
            name = inner.words[2].text
        elif w[:2] in (["deny", "booting"], ["ignore", "booting"]):
            out.skip(where, f"host {name}: '{w[0]} booting', not a node")
            return
        elif w[:1] == ["hardware"] and len(w) >= 3:
            mac = inner.words[2].text
        elif w[:1] == ["fixed-address"] and len(w) >= 2:
            ip = inner.words[1].text  # the first of a list; a DNS name is kept to be rejected, not resolved
        elif "dhcp-client-identifier" in w[:3] and w[0] in ("option", "host-identifier"):
            value = inner.words[w.index("dhcp-client-identifier") + 1 :]
            token = value[-1] if value else None
            if token is not None and not token.quoted:
                client_id = token.text
            elif token is not None and len(token.text) == 7 and token.text[0] == "\x01":
                client_id = ":".join(f"{ord(c):02x}" for c in token.text)  # "\001\000\036…": type 1 + MAC
    if not (mac or client_id):
        out.skip(where, f"host {name}: no hardware address or client identifier (hardware-less host)")
        return
    if ip and not ip.replace(".", "").isdigit():
        out.skip(where, f"host {name}: fixed-address {ip!r} is a DNS name; imported without IP (never resolved)")
        ip = ""
    out.host(where, mac or client_id, hostname=name, ip=ip)


def _walk(body: list[_Statement], src: Source, walk: _Walk) -> None:
    for stmt in body:
        head = stmt.words[0].text.lower() if stmt.words else ""
        if head == "include" and len(stmt.words) > 1 and stmt.body is None:
            _include(stmt, src, walk)
        elif head == "host" and stmt.body is not None:
            _host(stmt, src, walk.out)
        elif head in ("class", "subclass"):
            walk.out.skip(src.at(stmt.first, stmt.last), f"{_text(stmt.words)}: a match rule, not a node")
        elif stmt.body is not None:
            _walk(stmt.body, src, walk)  # group, subnet, shared-network, pool … may hold hosts


def _include(stmt: _Statement, src: Source, walk: _Walk) -> None:
    target = resolve_include(stmt.words[1].text, src.path)
    where = src.at(stmt.first, stmt.last)
    if os.path.realpath(target) in walk.stack or len(walk.stack) > _MAX_INCLUDE_DEPTH:
        walk.out.error(where, f"include loop: {target}")
        return
    try:
        child = load(target, walk.out)
    except OSError as err:
        walk.out.error(where, f"missing include {target}: {err.strerror or err}")
        return
    _parse_one(child, walk)


def _parse_one(src: Source, walk: _Walk) -> None:
    walk.stack.append(os.path.realpath(src.path))
    body, _ = _block(_tokens(src, walk.out), 0, src, walk.out, 0)
    _walk(body, src, walk)
    walk.stack.pop()


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    for src in sources:
        _parse_one(src, _Walk(out))


def sniff(text: str) -> int:
    return (
        has(text, r"^\s*host\s+\S+\s*\{", 50)
        + has(text, r"hardware\s+ethernet|fixed-address|subnet\s", 40)
        + has(text, r"^\s*subnet\s+[\d.]+\s+netmask\s+[\d.]+\s*\{", 15)
    )
