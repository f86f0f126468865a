"""Perceus wire protocol v1: typed messages, codec and error codes shared by master and agent."""

from perceus.protocol.codec import decode, encode
from perceus.protocol.enums import ErrorCode, Phase, Stage, WaitReason
from perceus.protocol.messages import (
    PROTOCOL_VERSION,
    Ack,
    Action,
    CheckIn,
    Chunk,
    Error,
    Event,
    Exec,
    ExecResult,
    GetChunks,
    GetManifest,
    Hello,
    Manifest,
    Message,
    Report,
    Script,
    ScriptResult,
    Sync,
    Wait,
    Welcome,
)

__all__ = [
    "PROTOCOL_VERSION", "Ack", "Action", "CheckIn", "Chunk", "Error", "ErrorCode", "Event", "Exec",
    "ExecResult", "GetChunks", "GetManifest", "Hello", "Manifest", "Message", "Phase", "Report", "Script",
    "ScriptResult", "Stage", "Sync", "Wait", "WaitReason", "Welcome", "decode", "encode",
]
