"""`kota device zk …`: the technician's probe of a ZKTeco attendance machine (ZK protocol).

Readable output for a person in an office corridor, `--json` for scripts, a progress bar on
stderr for long reads. Every subcommand talks through the production driver
(`devices.zk.driver`), so what the technician sees is what the office edge agent will see.
Exit codes: 0 done, 1 the machine could not be reached or answered garbage, 2 bad arguments
(or `clear` without --yes), 4 the machine refused the request (a wrong comm key included).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from devices.zk.codes import DEFAULT_PORT
from devices.zk.driver import (
    DEFAULT_TIMEOUT_S,
    Punch,
    ZkDriver,
    ZkInfo,
    ZkLogChanged,
    office_zone,
)
from devices.zk.errors import ZkDeviceError, ZkError
from devices.zk.records import User

EXIT_UNREACHABLE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 4
VERIFY = {0: "password", 1: "finger", 2: "card", 4: "card", 15: "face"}
STATE = {0: "in", 1: "out", 2: "break-out", 3: "break-in", 4: "overtime-in", 5: "overtime-out"}
BAR_WIDTH = 30


# --------------------------------------------------------------------------- progress


class ProgressBar:
    """``received/total`` bytes as a bar on stderr, redrawn at most ten times a second."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self._drawn_at = 0.0
        self._started = time.monotonic()

    def __call__(self, received: int, total: int) -> None:
        now = time.monotonic()
        if received < total and now - self._drawn_at < 0.1:
            return
        self._drawn_at = now
        share = received / total if total else 1.0
        filled = round(share * BAR_WIDTH)
        rate = received / max(now - self._started, 1e-6) / 1e6
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                          f"{share:4.0%} {received / 1e6:.1f}/{total / 1e6:.1f} MB "
                          f"{rate:.1f} MB/s")
        if received >= total:
            self.stream.write("\n")
        self.stream.flush()


def _progress(args: argparse.Namespace, label: str) -> ProgressBar | None:
    return ProgressBar(label) if args.progress or sys.stderr.isatty() else None


# --------------------------------------------------------------------------- formatting


def _punch_json(p: Punch) -> dict[str, Any]:
    return {"user_id": p.user_id, "time": p.timestamp.isoformat(), "status": p.status,
            "punch": p.punch, "uid": p.uid, "workcode": p.workcode}


def _user_json(u: User) -> dict[str, Any]:
    data = asdict(u)
    data.pop("password")  # a technician's screen or a log is no place for it
    return data


def format_info(where: str, info: ZkInfo, clock: datetime, drift_s: float) -> str:
    layouts = (f"users {info.user_size or '?'} B, punches {info.record_size or '?'} B "
               f"per record")
    return "\n".join([
        f"Attendance machine {where} — {info.name}, s/n {info.serial}",
        f"  firmware  {info.firmware} ({info.platform}), MAC {info.mac}",
        f"  users     {info.users} of {info.users_cap}   fingerprints {info.fingers}"
        + (f"   faces {info.faces}" if info.faces is not None else ""),
        f"  punches   {info.punches} of {info.punches_cap} ({info.punches_used_pct:.1f} % "
        f"used)" + ("  — nearly full: read and clear it" if info.punches_used_pct > 80 else ""),
        f"  layouts   {layouts}",
        f"  clock     {clock:%Y-%m-%d %H:%M:%S %Z}, {_drift_text(drift_s)}",
    ])


def _drift_text(drift_s: float) -> str:
    if abs(drift_s) < 1.5:
        return "right (within a second)"
    return f"{abs(drift_s):.0f} s {'fast' if drift_s > 0 else 'slow'}"


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False))


# --------------------------------------------------------------------------- running


def _driver(args: argparse.Namespace) -> ZkDriver:
    return ZkDriver(args.host, args.port, comm_key=args.comm_key, udp=args.udp,
                    timeout_s=args.timeout, tz=args.zone)


def _run(args: argparse.Namespace, job: Callable[[ZkDriver], int]) -> int:
    try:
        args.zone = office_zone(args.tz)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        with _driver(args) as zk:
            return job(zk)
    except ZkDeviceError as exc:
        _emit_error(args, exc)
        return EXIT_REFUSED
    except ZkError as exc:
        _emit_error(args, exc)
        return EXIT_UNREACHABLE


def _emit_error(args: argparse.Namespace, exc: Exception) -> None:
    if args.json:
        _print_json({"ok": False, "error": str(exc), "kind": type(exc).__name__})
    else:
        print(f"error: {exc}", file=sys.stderr)


def cmd_info(args: argparse.Namespace) -> int:
    def job(zk: ZkDriver) -> int:
        info = zk.info()
        clock = zk.get_time()
        drift = zk.clock_drift_s()
        if args.json:
            _print_json({**asdict(info), "punches_used_pct": round(info.punches_used_pct, 2),
                         "clock": clock.isoformat(), "clock_drift_s": drift})
        else:
            print(format_info(zk.where, info, clock, drift))
        return 0
    return _run(args, job)


def cmd_users(args: argparse.Namespace) -> int:
    def job(zk: ZkDriver) -> int:
        users = zk.users(progress=_progress(args, "users  "))
        if args.json:
            _print_json([_user_json(u) for u in users])
            return 0
        print(f"{'uid':>5}  {'user id':<24} {'name':<24} privilege  card")
        for u in users:
            print(f"{u.uid:>5}  {u.user_id:<24} {u.name:<24} {u.privilege:>9}  {u.card or '-'}")
        print(f"{len(users)} users", file=sys.stderr)
        return 0
    return _run(args, job)


def _parse_since(text: str | None, zone: Any) -> datetime | None:
    if text is None:
        return None
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=zone)


def cmd_logs(args: argparse.Namespace) -> int:
    def job(zk: ZkDriver) -> int:
        try:
            since = _parse_since(args.since, args.zone)
        except ValueError:
            print(f"error: --since {args.since!r} is not a date and time such as "
                  f"2026-11-02T07:00 (office zone) or 2026-11-02T00:00+00:00", file=sys.stderr)
            return EXIT_USAGE
        punches = zk.punches(since, progress=_progress(args, "punches"))
        shown = punches[-args.last:] if args.last else punches
        if args.json:
            _print_json({"count": len(punches), "duplicates_dropped": zk.duplicates_dropped,
                         "watermark": punches[-1].timestamp.isoformat() if punches else None,
                         "punches": [_punch_json(p) for p in shown]})
            return 0
        for p in shown:
            print(f"{p.timestamp:%Y-%m-%d %H:%M:%S}  {p.user_id:<24} "
                  f"{STATE.get(p.punch, str(p.punch)):<12} {VERIFY.get(p.status, str(p.status))}")
        newest = f", newest {punches[-1].timestamp.isoformat()}" if punches else ""
        print(f"{len(punches)} punches" + (f" since {since.isoformat()}" if since else "")
              + newest, file=sys.stderr)
        return 0
    return _run(args, job)


def cmd_time(args: argparse.Namespace) -> int:
    def job(zk: ZkDriver) -> int:
        clock = zk.get_time()
        drift = zk.clock_drift_s()
        if args.json:
            _print_json({"clock": clock.isoformat(), "clock_drift_s": drift})
        else:
            print(f"{clock:%Y-%m-%d %H:%M:%S %Z} ({_drift_text(drift)})")
        return 0
    return _run(args, job)


def cmd_sync_time(args: argparse.Namespace) -> int:
    def job(zk: ZkDriver) -> int:
        before = zk.clock_drift_s()
        changed = abs(before) > args.max_drift
        if changed:
            zk.set_time(datetime.now(UTC))
        after = zk.clock_drift_s() if changed else before
        if args.json:
            _print_json({"ok": True, "set": changed, "drift_before_s": before,
                         "drift_after_s": after})
        elif changed:
            print(f"clock was {_drift_text(before)}; set to the time of this computer "
                  f"(now {_drift_text(after)})")
        else:
            print(f"clock is {_drift_text(before)}: within {args.max_drift:g} s, left alone")
        return 0
    return _run(args, job)


def cmd_live(args: argparse.Namespace) -> int:
    stop = threading.Event()
    if args.duration:
        threading.Timer(args.duration, stop.set).start()

    def job(zk: ZkDriver) -> int:
        if not args.json:
            print(f"waiting for punches on {zk.where} — Ctrl-C to stop", file=sys.stderr,
                  flush=True)
        seen = 0
        for p in zk.live(stop):
            if args.json:
                print(json.dumps(_punch_json(p), ensure_ascii=False), flush=True)
            else:
                print(f"{p.timestamp:%H:%M:%S}  {p.user_id:<24} "
                      f"{STATE.get(p.punch, str(p.punch)):<12} "
                      f"{VERIFY.get(p.status, str(p.status))}", flush=True)
            seen += 1
            if args.count and seen >= args.count:
                break
        return 0

    try:
        return _run(args, job)
    except KeyboardInterrupt:
        return 0
    finally:
        stop.set()


def cmd_clear(args: argparse.Namespace) -> int:
    if not args.yes:
        print("refusing to clear: erasing a machine's attendance log cannot be undone, and a "
              "punch not yet stored by the control room is lost for good (and with it the "
              "employee's attendance for payroll). Check that the office edge agent has "
              "delivered every punch, or keep a copy with --backup FILE, then run again with "
              "--yes.", file=sys.stderr)
        return EXIT_USAGE

    def job(zk: ZkDriver) -> int:
        expect = None
        if args.backup:
            punches = zk.punches(progress=_progress(args, "backup "))
            expect = len(punches) + zk.duplicates_dropped
            Path(args.backup).write_text(json.dumps(
                {"serial": zk.info().serial, "read_at": datetime.now(UTC).isoformat(),
                 "punches": [_punch_json(p) for p in punches]}, ensure_ascii=False) + "\n",
                encoding="utf-8")
        try:
            cleared = zk.clear_punches(expect_count=expect)
        except ZkLogChanged as exc:
            _emit_error(args, exc)
            return EXIT_UNREACHABLE
        if args.json:
            _print_json({"ok": True, "cleared": cleared, "backup": args.backup})
        else:
            print(f"cleared {cleared} punches" + (f" (saved to {args.backup} first)"
                                                   if args.backup else ""))
        return 0
    return _run(args, job)


# --------------------------------------------------------------------------- parser


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register `zk` on the `kota device` subparsers."""
    zk = kinds.add_parser(
        "zk", help="ZKTeco attendance machine over the ZK protocol (TCP or UDP)",
        description="Read and manage a ZKTeco fingerprint/face attendance machine (real or "
        "`kota sim zk`) over the ZK protocol, through the office edge agent's driver. Times "
        "are shown in the office's zone (--tz).",
        epilog="Examples: `kota device zk info --host 192.168.1.201`; `kota device zk logs "
        "--host 192.168.1.201 --comm-key 1234 --since 2026-11-01T00:00 --json`; `kota device "
        "zk sync-time --host 10.1.2.3 --tz WITA`; `kota device zk live --port 4370 --count 5`; "
        "`kota device zk clear --host 10.1.2.3 --backup sekretariat.json --yes`. Exit codes: "
        "0 done, 1 unreachable, dropped or garbled, 2 bad arguments (or clear without --yes), "
        "4 refused by the machine (a wrong comm key too).")
    actions = zk.add_subparsers(dest="zk_action", metavar="ACTION", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1", help="machine address (default "
                        "127.0.0.1; the machine shows it under Comm. → Ethernet)")
    common.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"ZK port (default "
                        f"{DEFAULT_PORT})")
    common.add_argument("--comm-key", type=int, default=0, metavar="N", help="communication "
                        "key set on the machine (Comm. → Connection; default 0: none)")
    common.add_argument("--udp", action="store_true", help="talk UDP instead of TCP (older "
                        "firmware)")
    common.add_argument("--tz", default="WIB", metavar="ZONE", help="the office's zone: WIB, "
                        "WITA, WIT or an IANA name (default WIB); the machine keeps local time")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT_S:g})")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    def add(name: str, help_: str, func: Callable[[argparse.Namespace], int],
            description: str | None = None) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_, description=description or help_,
                               parents=[common])
        p.set_defaults(func=func)
        return p

    def progress_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--progress", action="store_true", help="draw the progress bar on "
                       "stderr even when it is not a terminal")

    add("info", "identity, firmware, users and punches against capacity, record layouts, clock",
        cmd_info)
    users = add("users", "list enrolled users (uid, user id, name, privilege, card)", cmd_users,
                "List every enrolled user. Passwords are never shown.")
    progress_flag(users)
    logs = add("logs", "read punches, all or since a time", cmd_logs,
               "Read the attendance log (the whole log travels; only punches at or after "
               "--since are kept). Text: one line per punch, oldest first; --json: {count, "
               "duplicates_dropped, watermark, punches: [{user_id, time, status, punch, uid, "
               "workcode}]}. Read-only: the machine's log is not changed.")
    logs.add_argument("--since", metavar="TIME", help="ISO date and time; without a zone it is "
                      "the office's (e.g. 2026-11-02T07:00)")
    logs.add_argument("--last", type=int, metavar="N", help="show only the newest N (count "
                      "still covers all)")
    progress_flag(logs)
    add("time", "the machine's clock and how far it is off", cmd_time)
    sync = add("sync-time", "set the machine's clock from this computer when it drifted",
               cmd_sync_time, "Compare the machine's clock with this computer's (keep this "
               "computer on NTP) and set it when it is off by more than --max-drift.")
    sync.add_argument("--max-drift", type=float, default=0.0, metavar="S", help="leave the "
                      "clock alone within S seconds (default 0: always set)")
    live = add("live", "print punches as people make them, until Ctrl-C", cmd_live,
               "Register for live punch events and print each one (JSON: one object per "
               "line). The log itself is not read; use logs for what happened before.")
    live.add_argument("--count", type=int, metavar="N", help="stop after N punches")
    live.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    clear = add("clear", "erase the attendance log (needs --yes)", cmd_clear,
                "Erase every punch on the machine (users stay). Irreversible: refused unless "
                "--yes is given. With --backup the log is read to FILE first and nothing is "
                "cleared if a punch arrived after the read (run again).")
    clear.add_argument("--yes", action="store_true", help="confirm: the punches on the "
                       "machine are stored elsewhere and may be erased")
    clear.add_argument("--backup", metavar="FILE", help="save the log as JSON to FILE first")
    progress_flag(clear)
