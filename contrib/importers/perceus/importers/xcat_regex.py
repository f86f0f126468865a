"""xCAT's `|regex|replacement|` table values, evaluated for one node (arithmetic in ( ) included)."""

from __future__ import annotations

import ast
import operator
import re

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv}


def _arith(expr: str) -> str:
    """Integer + - * / over literals: xCAT evaluates `($1+0)` with Perl; we do not eval arbitrary text."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp):
            op = ast.FloorDiv if isinstance(node.op, ast.Div) else type(node.op)
            if op in _OPS:
                return int(_OPS[op](value(node.left), value(node.right)))
        raise ValueError(expr)

    try:
        return str(value(ast.parse(re.sub(r"\b0+(\d)", r"\1", expr), mode="eval").body))
    except (SyntaxError, ValueError, ZeroDivisionError, RecursionError):
        return expr


def expand(value: str, node: str) -> str:
    """The value for `node`; plain values pass through, a regex that does not match gives ''."""
    if len(value) < 3 or value[0] not in "|/" or value[-1] != value[0]:
        return value
    parts = value[1:-1].split(value[0])
    if len(parts) != 2:
        return value
    try:
        match = re.search(parts[0], node)
    except re.error:
        return ""
    if match is None:
        return ""

    def group(ref: re.Match[str]) -> str:
        number = int(ref.group(1))
        return (match.group(number) or "") if number <= match.re.groups else ""

    text = re.sub(r"\$(\d+)", group, parts[1])
    return re.sub(r"\(([\d\s+\-*/]+)\)", lambda m: _arith(m.group(1)), text)
