"""The sushy adapter (the only module importing sushy): Redfish power control.

One sushy root per (base URL, user, password) is kept for the process, so the service root is read once per
BMC address — several systems behind one Redfish service (a chassis manager, or sushy-tools' emulator) cost
one request each after that.  Basic auth (no Redfish session: one request fewer per BMC, nothing to log out).
"""

from __future__ import annotations

import threading
from typing import Any

import sushy
from sushy import exceptions as sushy_exc
from sushy.auth import BasicAuth

from perceus.master.power.errors import BmcError
from perceus.master.power.records import BmcRecord

ACTIONS = {
    "on": sushy.ResetType.ON,
    "off": sushy.ResetType.FORCE_OFF,
    "soft": sushy.ResetType.GRACEFUL_SHUTDOWN,
    "reset": sushy.ResetType.FORCE_RESTART,
    "cycle": sushy.ResetType.POWER_CYCLE,
}
RESULT = {"off": "off", "on": "on", "cycle": "cycling", "reset": "reset", "soft": "soft-off requested"}
_roots: dict[tuple[str, str, str, float], Any] = {}
_lock = threading.Lock()


def power(record: BmcRecord, action: str, timeout: float) -> str:
    """Run one power action (`status` included) on a Redfish system; returns the state or what was requested."""
    try:
        system = _root(record, timeout).get_system(record.path or None)
        state = _state(system.power_state)
        if action == "status":
            return state
        if action in ("on", "off") and state == action:
            return state
        if action == "cycle" and state == "off":
            action = "on"
        value = ACTIONS[action]
        if action == "cycle" and value not in system.get_allowed_reset_system_values():
            value = sushy.ResetType.FORCE_RESTART  # no PowerCycle on this BMC: a hard restart is the same for us
        system.reset_system(value)
        return RESULT[action]
    except BmcError:
        raise
    except sushy_exc.AccessError:
        raise BmcError("auth", record.url, "login refused (HTTP 401/403)") from None
    except sushy_exc.ResourceNotFoundError:
        raise BmcError("config", record.url, f"no Redfish system at {record.path or '(the only one)'}") from None
    except sushy_exc.UnknownDefaultError:
        raise BmcError("config", record.url, "several Redfish systems: give the system path in the BMC URL") from None
    except sushy_exc.InvalidParameterValueError as exc:
        raise BmcError("unsupported", record.url, str(exc)) from None
    except sushy_exc.ConnectionError as exc:
        raise BmcError("unreachable", record.url, _first_line(exc)) from None
    except sushy_exc.SushyError as exc:
        raise BmcError("bmc", record.url, _first_line(exc)) from None


def _root(record: BmcRecord, timeout: float) -> Any:
    key = (record.base_url, record.user, record.password, timeout)
    with _lock:
        root = _roots.get(key)
    if root is None:
        root = sushy.Sushy(
            record.base_url,
            auth=BasicAuth(username=record.user, password=record.password),
            read_timeout=timeout,
            connect_timeout=min(timeout, 5.0),
            # One attempt per call: our runner retries within the node's deadline.  (sushy reads 0 as "3").
            server_side_retries=1,
            server_side_retries_delay=0,
        )
        with _lock:
            root = _roots.setdefault(key, root)
    return root


def _state(value: Any) -> str:
    if value == sushy.PowerState.ON:
        return "on"
    if value == sushy.PowerState.OFF:
        return "off"
    return str(getattr(value, "value", value) or "unknown").lower()


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
