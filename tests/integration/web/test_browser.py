"""The dashboard in headless Chromium against a real perceus-web (no QEMU): live rows from store changes without a
reload, a new node appearing, approve by clicking, the node page.  The QEMU version is vm-tests/test_web.py."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from tests.helpers.browser import headless_chromium

from perceus.master.store import open_store
from perceus.master.store.models import ContactUpdate, NewNode
from perceus.web.client import RunningWeb

from .conftest import mac


@pytest.fixture
def browser() -> Iterator[object]:
    with headless_chromium() as driver:
        yield driver


def wait(what: str, fn: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not fn():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_fleet_view_follows_the_store_live_and_approves_by_click(
    web: RunningWeb, browser: object, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(browser, WebDriver)
    d = browser
    shots = Path(os.environ.get("PERCEUS_ARTIFACTS", tmp_path / "artifacts")) / "web-integration"
    shots.mkdir(parents=True, exist_ok=True)
    d.get(f"{web.url}/login?token={web.tokens.admin}")
    assert len(d.find_elements(By.CSS_SELECTOR, "#fleet tbody tr")) == 6
    d.execute_script("window.__no_reload = 1")

    def cell(host: str, col: int) -> str:
        return str(
            d.execute_script(
                f"const r = document.querySelector('#row-' + CSS.escape(arguments[0])); "
                f"return r ? r.cells[{col}].textContent : '';",
                mac(int(host[1:])),
            )
        )

    with open_store(web.paths) as store:  # what perceus-bus writes when n0005 checks in
        store.record_contacts([ContactUpdate(mac(5), "ready", "10.0.0.15", time.time(), "b5", "runtime")])
    wait("n0005 ready in the table", lambda: cell("n0005", 1) == "ready" and cell("n0005", 2) == "runtime")
    assert cell("n0005", 3).endswith("s ago")
    wait("counts updated", lambda: "5 ready" in d.find_element(By.ID, "counts").text)
    with open_store(web.paths) as store:
        store.add(NewNode(nodeid=mac(7), hostname="n0007", group="gpu", macs=(mac(7),)))
    wait("the new node's row", lambda: cell("n0007", 0) == "n0007")
    hosts = [tr.text.split()[0] for tr in d.find_elements(By.CSS_SELECTOR, "#fleet tbody tr")]
    assert hosts == sorted(hosts) and len(hosts) == 7
    assert d.execute_script("return window.__no_reload") == 1, "the fleet view reloaded"
    d.save_screenshot(str(shots / "fleet-live.png"))

    d.get(web.url + "/pending")
    row = d.find_element(By.ID, "pending-" + mac(100).replace(":", ""))
    row.find_element(By.CSS_SELECTOR, "button[data-action=approve]").click()
    wait("approval confirmed", lambda: "Approved 1 nodes: n0006" in row.text)
    d.save_screenshot(str(shots / "approved.png"))
    d.get(web.url + "/nodes/n0001")
    assert "manifest signature mismatch" in d.find_element(By.TAG_NAME, "main").text
    print(f"screenshots: {shots}")
