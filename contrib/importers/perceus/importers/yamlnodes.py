"""The one adapter to PyYAML: YAML text → plain mappings that remember the lines they came from."""

from __future__ import annotations

from dataclasses import dataclass, field

import yaml  # type: ignore[import-untyped,unused-ignore]


class YamlError(Exception):
    """The text is not YAML; `line` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class Located:
    """A YAML value with its first and last line; mappings hold Located values, sequences too."""

    value: object
    first: int
    last: int
    items: dict[str, Located] = field(default_factory=dict)
    elements: list[Located] = field(default_factory=list)

    def get(self, *keys: str) -> Located | None:
        """The first of `keys` present in this mapping."""
        return next((self.items[k] for k in keys if k in self.items), None)

    def text(self, *keys: str) -> str:
        found = self.get(*keys)
        return "" if found is None or found.value is None or found.items or found.elements else str(found.value)


def _convert(node: yaml.Node) -> Located:
    first, last = node.start_mark.line + 1, max(node.end_mark.line + (1 if node.end_mark.column else 0), 1)
    if isinstance(node, yaml.MappingNode):
        out = Located(None, first, last)
        for key, value in node.value:
            out.items[str(key.value)] = _convert(value)
        return out
    if isinstance(node, yaml.SequenceNode):
        return Located(None, first, last, elements=[_convert(v) for v in node.value])
    return Located(node.value, first, last)


def load(text: str) -> Located | None:
    """The document's root (None when empty); raises YamlError for anything PyYAML rejects."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise YamlError(str(err).replace("\n", " "), (mark.line + 1) if mark is not None else 1) from err
    except (RecursionError, ValueError) as err:
        raise YamlError(f"unreadable YAML: {err}", 1) from err
    return None if root is None else _convert(root)
