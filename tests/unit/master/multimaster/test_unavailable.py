"""Dispatcher.unavailable (set by the multimaster feature): a cut-off master answers nothing, then resumes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from perceus.master.bus.handlers import Dispatcher, Incoming
from perceus.master.config import Paths
from perceus.master.store.models import NewNode
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Ack, CheckIn, Hello

MAC = "52:54:00:00:01:01"


@pytest.fixture
def dispatcher(paths: Paths) -> Iterator[Dispatcher]:
    store = SQLiteStore(paths.database)
    store.add(NewNode(nodeid=MAC, hostname="n0001"))
    yield Dispatcher(store=store, paths=paths, clock=lambda: 1000.0)
    store.close()


def checkin(rid: int) -> Incoming:
    return Incoming(b"a", CheckIn(rid=rid, node=MAC, state="ready", boot_id="b"), "10.0.0.9")


def test_cut_off_master_sends_no_reply_and_queues_nothing(dispatcher: Dispatcher) -> None:
    dispatcher.unavailable = "node database unreachable"
    unknown = Incoming(
        b"b", Hello(rid=2, macs=("52:54:00:00:09:09",), state="init", stage=Stage.STAGE1, boot_id="b"), ""
    )
    assert dispatcher.handle_batch([checkin(1), unknown]) == []
    assert dispatcher.pending_writes() == 0 and dispatcher.deferred == []
    assert dispatcher.store.get("52:54:00:00:09:09") is None  # nothing enrolled while cut off


def test_cut_off_mid_burst_drops_answers_already_computed(
    dispatcher: Dispatcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_get = dispatcher.store.get

    def get_then_lose(nodeid: str) -> object:
        node = real_get(nodeid)
        dispatcher.unavailable = "lost during this burst"  # what the heartbeat thread does meanwhile
        return node

    monkeypatch.setattr(dispatcher.store, "get", get_then_lose)
    assert dispatcher.handle_batch([checkin(1), checkin(2)]) == []


def test_answers_again_once_available(dispatcher: Dispatcher) -> None:
    dispatcher.unavailable = "x"
    assert dispatcher.handle_batch([checkin(1)]) == []
    dispatcher.unavailable = ""
    (out,) = dispatcher.handle_batch([checkin(2)])
    assert isinstance(out.msg, Ack) and out.msg.rid == 2
