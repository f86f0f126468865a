"""Syslog files with dhcpd/dnsmasq request lines: RFC 3164, RFC 5424 and ISO timestamps, rotated .gz files."""

from __future__ import annotations

import datetime as dt
import os
import re

from perceus.importers.dhcplog import Sighting, first_seen, request_mac
from perceus.importers.records import Collector, ParseOptions
from perceus.importers.sniffing import has
from perceus.importers.source import Source

_MONTHS = {
    m: i for i, m in enumerate(["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1)
}
_PRI = r"^(?:<\d{1,3}>)?"
_RFC5424 = re.compile(_PRI + r"\d{1,2} (\S+) ")
_ISO = re.compile(_PRI + r"(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s")
_BSD = re.compile(_PRI + r"([A-Z][a-z]{2})\s+(\d{1,2})\s+(\d\d):(\d\d):(\d\d)\s")


def _iso(text: str) -> float | None:
    try:
        stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()


def _bsd_times(stamps: list[tuple[int, int, int] | None], end_year: int) -> list[float | None]:
    """RFC 3164 has no year: count back from the file's year, one year less at each Dec→Jan step."""
    years: list[int] = [0] * len(stamps)
    year, later_month = end_year, 13
    for index in range(len(stamps) - 1, -1, -1):
        stamp = stamps[index]
        if stamp is None:
            continue
        if stamp[0] > later_month + 6:  # going back in time the month jumps up: we crossed New Year
            year -= 1
        later_month = stamp[0]
        years[index] = year
    times: list[float | None] = []
    for stamp, year in zip(stamps, years, strict=True):
        if stamp is None:
            times.append(None)
            continue
        try:
            moment = dt.datetime(year, stamp[0], stamp[1], tzinfo=dt.UTC) + dt.timedelta(seconds=stamp[2])
        except ValueError:
            times.append(None)
            continue
        times.append(moment.timestamp())
    return times


def _file_year(src: Source) -> int:
    """Year the file was last written (the year of its last RFC 3164 line)."""
    try:
        return dt.datetime.fromtimestamp(os.stat(src.path).st_mtime, dt.UTC).year
    except OSError:
        return dt.datetime.now(dt.UTC).year


def parse(sources: list[Source], out: Collector, options: ParseOptions) -> None:
    """All files together: a MAC's position is its earliest request across every file given."""
    sightings: list[Sighting] = []
    order = 0
    for src in sources:
        found: list[tuple[int, str]] = []
        bsd: list[tuple[int, int, int] | None] = []
        iso: list[float | None] = []
        for number, line in enumerate(src.lines, 1):
            mac = request_mac(line)
            if mac is None:
                continue
            found.append((number, mac))
            match = _BSD.match(line)
            bsd.append(
                (
                    _MONTHS.get(match.group(1), 1),
                    int(match.group(2)),
                    int(match.group(3)) * 3600 + int(match.group(4)) * 60 + int(match.group(5)),
                )
                if match and match.group(1) in _MONTHS
                else None
            )
            stamp = _RFC5424.match(line) or _ISO.match(line)
            iso.append(_iso(stamp.group(1)) if stamp else None)
        bsd_times = _bsd_times(bsd, _file_year(src))
        previous = float("-inf")
        for (number, mac), iso_time, bsd_time in zip(found, iso, bsd_times, strict=True):
            time = iso_time if iso_time is not None else bsd_time
            previous = time if time is not None else previous  # a stamp-less line sorts with the one before
            sightings.append(Sighting(previous, order, src.at(number), mac))
            order += 1
    first_seen(sightings, out)


def sniff(text: str) -> int:
    return has(text, r"(dhcpd|dnsmasq-dhcp)(\[\d+\])?:.*(DHCPDISCOVER|DHCPREQUEST|DHCPACK|DHCPOFFER)", 90)
