"""The running agent's status file, for `kota edge status`: written atomically, read and rendered.

Why a file and not a loopback HTTP port: the agent already owns a state directory; a file needs
no port (nothing to configure, nothing to collide with on a box that runs several agents, no
listener to secure), a technician can read it as any user the directory allows, and
``os.replace`` makes every read see one whole snapshot. The agent rewrites it every poll
interval; a file older than ``stale_after_s`` (or whose process is gone) means the agent is not
running. Owns the file format and its rendering; it must not know how the agent gathers it.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

STATUS_FILE = "status.json"
FORMAT_VERSION = 1


class StatusError(Exception):
    """No usable status: the agent is not running, or its file is stale or unreadable."""


def status_path(state_dir: Path) -> Path:
    return state_dir / STATUS_FILE


def write_status(state_dir: Path, status: Mapping[str, Any]) -> None:
    """Replace the status file in one step (a reader never sees half a file)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".status-", suffix=".json", dir=state_dir)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT_VERSION, **status}, f, indent=1, default=str)
        os.replace(tmp, status_path(state_dir))
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_status(state_dir: Path) -> None:
    """On a clean stop: no file means "not running"."""
    status_path(state_dir).unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True


def read_status(state_dir: Path, now: datetime) -> dict[str, Any]:
    """The status of a running agent; raises StatusError saying why there is none."""
    path = status_path(state_dir)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise StatusError(f"no status file at {path}: the edge agent is not running "
                          "(or uses another state dir; see --state-dir)") from exc
    except (OSError, ValueError) as exc:
        raise StatusError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_VERSION:
        raise StatusError(f"{path} is not a status file of this version")
    try:
        written = datetime.fromisoformat(data["written_at"])
        stale_after_s = float(data["stale_after_s"])
        pid = int(data["pid"])
    except (KeyError, TypeError, ValueError) as exc:
        raise StatusError(f"{path} lacks written_at, stale_after_s or pid") from exc
    age_s = (now - written).total_seconds()
    data["age_s"] = age_s
    if data.get("host") == platform.node() and not _pid_alive(pid):
        raise StatusError(f"the edge agent that wrote {path} (pid {pid}) is not running; last "
                          f"written {age_s:.0f} s ago")
    if age_s > stale_after_s:
        raise StatusError(f"{path} is stale: last written {age_s:.0f} s ago (limit "
                          f"{stale_after_s:g} s); the edge agent is stuck or stopped")
    return data


def _age(iso: str | None, now: datetime) -> str:
    if not iso:
        return "never"
    seconds = (now - datetime.fromisoformat(iso)).total_seconds()
    if seconds < 60:
        return f"{seconds:.1f} s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.1f} h ago"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
            for row in rows]


def _cadence(dev: Mapping[str, Any]) -> str:
    """How often a controller is read and reported, and how many reports went early."""
    reads, reports = dev.get("reads_every_s"), dev.get("reports_every_s")
    if reads is None or reports is None:
        return "-"
    early = dev.get("early_reports") or 0
    return f"{reads:g} s / {reports:g} s" + (f" ({early} early)" if early else "")


def render(data: Mapping[str, Any], now: datetime) -> str:
    """A technician's table: one row per device, then each device's last error."""
    link = "connected" if data.get("connected") else "NOT connected"
    room = data.get("controlroom", {})
    outbox = data.get("outbox", {})
    lines = [
        f"edge {data.get('edge_id')} (epoch {data.get('epoch')}, pid {data.get('pid')}) — "
        f"broker {data.get('broker')} {link}",
        f"control room: {'alive' if room.get('alive') else 'NOT alive'} ({room.get('reason', '?')})",
        f"outbox: {outbox.get('reliable', 0)} event/ack and {outbox.get('telemetry', 0)} telemetry "
        f"waiting, {outbox.get('dropped_telemetry', 0)} telemetry dropped",
        "",
    ]
    header = ("INTERSECTION", "KIND", "ADDRESS", "MODEL / FIRMWARE", "MODE", "PLAN",
              "LAST CONTACT", "ERRORS", "READ / REPORT", "WATCHDOG")
    rows = [header]
    errors = []
    for iid, dev in sorted(data.get("devices", {}).items()):
        model = " ".join(x for x in (dev.get("model"), dev.get("firmware")) if x) or "?"
        mode = dev.get("mode") or "?"
        if dev.get("mode_reason") not in (None, "normal"):
            mode += f" ({dev['mode_reason']})"
        if dev.get("available"):
            state = ""
        elif dev.get("consecutive_errors") or dev.get("last_ok_at"):
            state = "OFFLINE "
        else:
            state = "NOT POLLED YET "
        wd = dev.get("watchdog")
        watchdog = "-"
        if wd:
            watchdog = "feeding" if wd.get("feeding") else "NOT feeding"
            if wd.get("expired"):
                watchdog += ", EXPIRED (local plan)"
            elif wd.get("left_s"):
                watchdog += f", {wd['left_s']:g} s left"
            elif wd.get("left_s") == 0:
                watchdog += ", idle (no central plan)"
        rows.append((iid, dev.get("kind", "?"), dev.get("address") or "-", model,
                     state + mode, str(dev.get("plan") or "-"),
                     _age(dev.get("last_ok_at"), now), str(dev.get("consecutive_errors", 0)),
                     _cadence(dev), watchdog))
        if dev.get("last_error"):
            if dev.get("failing_since"):
                since = _age(dev["failing_since"], now)
                first = dev.get("first_error")
                if first and first != dev["last_error"]:
                    errors.append(f"  {iid}: failing since {since}: {first}\n"
                                  f"  {' ' * len(iid)}  last: {dev['last_error']}")
                else:
                    errors.append(f"  {iid}: {dev['last_error']} (failing since {since})")
            else:
                errors.append(f"  {iid} (answers again): {dev['last_error']}")
    if len(rows) > 1:
        lines += _table(rows)
    machines = data.get("attendance") or []
    if machines:
        rows = [("ATTENDANCE MACHINE", "NAME / FIRMWARE", "STATE", "LAST CONTACT", "PUNCHES ON IT",
                 "UNSTORED", "CLOCK")]
        for m in machines:
            used = m.get("punches_on_machine")
            cap = m.get("capacity")
            fill = f"{used}" + (f"/{cap} ({100 * used / cap:.0f} %)" if used is not None and cap
                                else "") if used is not None else "?"
            drift = m.get("clock_drift_s")
            rows.append((m["device_sn"],
                         " ".join(x for x in (m.get("name"), m.get("firmware")) if x) or "?",
                         "online" if m.get("online") else "OFFLINE",
                         _age(m.get("last_contact"), now), fill,
                         f"{m.get('unstored_punches', 0)} in {m.get('unstored_batches', 0)} batch(es)",
                         "?" if drift is None else f"{drift:+.0f} s"))
            if m.get("error"):
                errors.append(f"  {m['device_sn']}: {m['error']}")
        lines += ["", *_table(rows)]
    cameras = data.get("cameras") or {}
    if cameras:
        rows = [("CAMERA", "ADDRESS", "MODEL / FIRMWARE", "STATE", "LAST CONTACT", "VIDEO",
                 "TAMPER", "CLOCK", "PTZ")]
        for cid, cam in sorted(cameras.items()):
            offset = cam.get("clock_offset_s")
            pos = cam.get("position")
            ptz = ("-" if not cam.get("ptz") else
                   f"{pos['pan']:+.2f} {pos['tilt']:+.2f} {pos['zoom']:.2f}" if pos else "?")
            if cam.get("away"):
                ptz += " (moved by operator)"
            rows.append((cid, cam.get("address") or "-",
                         " ".join(x for x in (cam.get("model"), cam.get("firmware")) if x) or "?",
                         "online" if cam.get("reachable") else "OFFLINE",
                         _age(cam.get("last_ok_at"), now),
                         f"{cam.get('fps', 0):g} fps, {cam.get('zones', 0)} zone(s)",
                         ", ".join(cam.get("tampers") or []) or "none",
                         "?" if offset is None else f"{offset:+.1f} s", ptz))
            for key in ("error", "video_error"):
                if cam.get(key):
                    errors.append(f"  {cid}: {cam[key]}")
        lines += ["", *_table(rows)]
    if errors:
        lines += ["", "last errors:", *errors]
    return "\n".join(lines)
