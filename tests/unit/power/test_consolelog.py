"""Console logs: timestamped lines, partial lines held back, escapes dropped, rotation, the last boot."""

from __future__ import annotations

from pathlib import Path

from perceus.master.power.consolelog import ConsoleLine, ConsoleLog, last_boot, parse_stamp, read, stamp


def test_lines_are_timestamped_and_partial_lines_wait(tmp_path: Path) -> None:
    t = iter([1_800_000_000.25, 1_800_000_001.5, 1_800_000_002.0])
    log = ConsoleLog(tmp_path / "n.log", clock=lambda: next(t))
    log.feed(b"SeaBIOS (version 1.16)\r\n\x1b[2Jhel")
    log.feed(b"lo\r\n")
    log.flush()
    assert read(tmp_path / "n.log") == [
        ConsoleLine(1_800_000_000.25, "SeaBIOS (version 1.16)"),
        ConsoleLine(1_800_000_001.5, "hello"),
    ]
    assert parse_stamp(stamp(1_800_000_000.25)) == 1_800_000_000.25


def test_rotation_keeps_the_newest_files(tmp_path: Path) -> None:
    log = ConsoleLog(tmp_path / "n.log", max_bytes=120, keep=2, clock=lambda: 1_800_000_000.0)
    for i in range(20):
        log.line(f"line {i:02d}")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["n.log", "n.log.1", "n.log.2"]
    texts = [ln.text for ln in read(tmp_path / "n.log", keep=2)]
    assert texts[-1] == "line 19" and texts == sorted(texts) and "line 00" not in texts


def test_last_boot_starts_at_the_last_firmware_banner() -> None:
    lines = [
        ConsoleLine(float(i), text)
        for i, text in enumerate(
            [
                "SeaBIOS (version a)",
                "Linux version 6.1",
                "old",
                "SeaBIOS (version a)",
                "iPXE 1.21",
                "Linux version 6.1",
                "kexec",
                "Linux version 6.1",
                "runtime",
            ]
        )
    ]
    assert last_boot(lines)[0] == lines[3]
    assert len(last_boot(lines)) == 6  # the kexec into the runtime kernel is the same boot
    assert last_boot(lines[1:3]) == lines[1:3]  # no banner captured: everything
    noted = [
        *lines,
        ConsoleLine(9.0, "-- perceus: power cycle (cycling) via ipmi://a@b:623 --"),
        ConsoleLine(10.0, "Linux version 6.1"),
    ]
    assert last_boot(noted) == noted[-2:]  # perceus's own power note starts a boot too
