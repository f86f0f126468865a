"""msgpack codec for protocol v1: one header map per message, validated field by field.

`decode` raises only ProtocolError (with an ErrorCode); it never trusts sizes, types or nesting it was not
told about.  Validators are built once per message class from its type hints.
"""

from __future__ import annotations

import dataclasses
import enum
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgpack

from perceus.errors import ProtocolError
from perceus.protocol.enums import ErrorCode
from perceus.protocol.messages import ALL_MESSAGES, PROTOCOL_VERSION, Message

# A header frame larger than this is refused before unpacking (scripts and manifests fit well inside).
MAX_HEADER_BYTES = 1 << 20
# Socket-level cap (zmq.MAXMSGSIZE) for a master's node-facing sockets; chunks flow the other way.
MAX_INBOUND_FRAME = MAX_HEADER_BYTES
# What an agent accepts: chunk payload frames are at most a few MiB.
MAX_CHUNK_FRAME = 16 << 20
MIN_SUPPORTED_VERSION = 1

Validator = Callable[[Any, str], Any]

_BY_TYPE: dict[str, type[Message]] = {cls.TYPE: cls for cls in ALL_MESSAGES}


def _bad(path: str, what: str) -> ProtocolError:
    return ProtocolError(f"field {path}: {what}", code=ErrorCode.BAD_MESSAGE)


def _scalar(kind: type) -> Validator:
    def check(value: Any, path: str) -> Any:
        # bool is an int subclass: keep them apart so `debug: true` is refused.
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _bad(path, f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return check


def _enum(kind: type[enum.Enum]) -> Validator:
    def check(value: Any, path: str) -> Any:
        try:
            return kind(value)
        except ValueError:
            raise _bad(path, f"unknown {kind.__name__} {value!r}") from None

    return check


def _sequence(item: Validator) -> Validator:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, list | tuple):
            raise _bad(path, "expected an array")
        return tuple(item(v, f"{path}[{i}]") for i, v in enumerate(value))

    return check


def _mapping(key: Validator, value_check: Validator | None) -> Validator:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _bad(path, "expected a map")
        for k in value:
            key(k, f"{path} key")
        if value_check is None:
            return value
        return {k: value_check(v, f"{path}.{k}") for k, v in value.items()}

    return check


def _optional(inner: Validator) -> Validator:
    def check(value: Any, path: str) -> Any:
        return None if value is None else inner(value, path)

    return check


def _any(value: Any, path: str) -> Any:
    return value


def _build(hint: Any) -> Validator:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint is Any:
        return _any
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum(hint)
    if hint in (str, int, float, bool, bytes):
        return _scalar(hint)
    if dataclasses.is_dataclass(hint) and isinstance(hint, type):
        return _struct(hint)
    if origin is tuple:
        return _sequence(_build(args[0]))
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        key = _build(args[0]) if args else _any
        return _mapping(key, None if not args or args[1] is Any else _build(args[1]))
    if origin in (typing.Union, types.UnionType):
        non_none = [a for a in args if a is not type(None)]
        if len(non_none) == 1:
            return _optional(_build(non_none[0]))
    raise TypeError(f"protocol field type {hint!r} has no validator")


_STRUCTS: dict[type, tuple[tuple[str, Validator, bool], ...]] = {}


def _fields(cls: type) -> tuple[tuple[str, Validator, bool], ...]:
    cached = _STRUCTS.get(cls)
    if cached is None:
        hints = typing.get_type_hints(cls)
        cached = tuple(
            (
                f.name,
                _build(hints[f.name]),
                f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING,
            )
            for f in dataclasses.fields(cls)
        )
        _STRUCTS[cls] = cached
    return cached


def _construct(cls: type, data: Mapping[str, Any], path: str) -> Any:
    kwargs: dict[str, Any] = {}
    for name, check, required in _fields(cls):
        if name in data:
            kwargs[name] = check(data[name], f"{path}{name}")
        elif required:
            raise _bad(f"{path}{name}", "missing")
    return cls(**kwargs)


def _struct(cls: type) -> Validator:
    def check(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _bad(path, "expected a map")
        return _construct(cls, value, path + ".")

    return check


_PLAIN = (str, int, float, bytes, type(None))


def _to_wire(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case, and enums (str subclasses) pack as their value
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _to_wire(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple | list):
        return [_to_wire(v) for v in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Mapping):
        return {k: _to_wire(v) for k, v in value.items()}
    return value


def to_dict(msg: Message) -> dict[str, Any]:
    """The wire map of `msg`, including the `v` and `t` envelope keys."""
    out: dict[str, Any] = {"v": PROTOCOL_VERSION, "t": msg.TYPE}
    for name, _, _ in _fields(type(msg)):
        out[name] = _to_wire(getattr(msg, name))
    return out


def encode(msg: Message) -> bytes:
    """Serialise one message to its header frame."""
    return msgpack.packb(to_dict(msg), use_bin_type=True)  # type: ignore[no-any-return]


def decode(frame: bytes | memoryview, *, max_bytes: int = MAX_HEADER_BYTES) -> Message:
    """Parse and validate one header frame; raises ProtocolError (never anything else)."""
    if len(frame) > max_bytes:
        raise ProtocolError(f"frame of {len(frame)} bytes exceeds {max_bytes}", code=ErrorCode.TOO_LARGE)
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:  # msgpack raises many types for hostile input; all mean the same here  # noqa: BLE001
        raise ProtocolError(f"undecodable frame: {type(exc).__name__}") from None
    if not isinstance(data, dict):
        raise ProtocolError("frame is not a map")
    version = data.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ProtocolError("missing protocol version 'v'")
    if version < MIN_SUPPORTED_VERSION:
        raise ProtocolError(f"protocol version {version} is too old", code=ErrorCode.UNSUPPORTED_VERSION)
    kind = data.get("t")
    cls = _BY_TYPE.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ProtocolError(f"unknown message type {kind!r}")
    try:
        return _construct(cls, data, "")  # type: ignore[no-any-return]
    except ProtocolError:
        raise
    except (TypeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"invalid {kind}: {exc}") from None


def request_id(frame: bytes | memoryview) -> int:
    """Best-effort `rid` of a frame that failed to decode, so an error reply can still be paired."""
    try:
        data = msgpack.unpackb(frame, raw=False, strict_map_key=False)
        rid = data.get("rid", 0) if isinstance(data, dict) else 0
        return rid if isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < 2**63 else 0
    except Exception:  # noqa: BLE001 - an error boundary: any failure here is one line and the caller goes on
        return 0


# Validate every declaration at import time so a bad field type fails tests, not a node in the field.
for _cls in ALL_MESSAGES:
    _fields(_cls)
    assert not {"v", "t"} & {f.name for f in dataclasses.fields(_cls)}, f"{_cls.__name__}: v/t are envelope keys"
