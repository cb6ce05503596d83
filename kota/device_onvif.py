"""`kota device onvif …`: the technician's probe of an ONVIF IP camera (discovery, identity,
profiles, snapshot, PTZ and presets, clock).

Readable output for a person at the foot of a pole, `--json` for scripts. Every subcommand
talks through the production driver (`devices.onvif`), so what the technician sees is what the
edge camera agent will see. The driver is imported when a command runs, not when the parser is
built (it pulls in zeep and aiohttp, which every other `kota` command can do without).
Exit codes: 0 done, 1 the camera could not be reached or answered garbage, 2 bad arguments,
4 the camera refused (wrong user or password, a refused request, a feature it lacks).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devices.onvif import OnvifCamera, Preset, PtzStatus

EXIT_UNREACHABLE = 1
EXIT_USAGE = 2
EXIT_REFUSED = 4
DEFAULT_PORT = 80
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_DISCOVERY_TIMEOUT_S = 2.0
DEFAULT_MAX_OFFSET_S = 5.0
PASSWORD_ENV = "KOTA_ONVIF_PASSWORD"
IDLE_POLL_S = 0.05


# --------------------------------------------------------------------------- output


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, default=str))


def _emit_error(args: argparse.Namespace, exc: Exception) -> None:
    if args.json:
        _print_json({"ok": False, "error": str(exc), "kind": type(exc).__name__})
    else:
        print(f"error: {exc}", file=sys.stderr)


def _offset_text(offset_s: float) -> str:
    if abs(offset_s) < 1.5:
        return "right (within a second)"
    return f"{abs(offset_s):.0f} s {'fast' if offset_s > 0 else 'slow'}"


def _status_json(status: PtzStatus) -> dict[str, Any]:
    data = asdict(status)
    data["utc"] = status.utc.isoformat() if status.utc else None
    return data


def _status_text(status: PtzStatus) -> str:
    return (f"pan {status.pan:+.3f}  tilt {status.tilt:+.3f}  zoom {status.zoom:.3f}  "
            f"{'moving' if status.moving else 'idle'}")


def _preset_text(p: Preset) -> str:
    where = ("position not reported" if p.pan is None else
             f"pan {p.pan:+.3f}  tilt {p.tilt:+.3f}  zoom {p.zoom:.3f}")
    return f"{p.token:<16} {p.name:<24} {where}"


# --------------------------------------------------------------------------- running


def _quiet_libraries() -> None:
    # httpx logs every request and onvif/zeep their retries at INFO; the driver turns failures
    # into typed errors with advice, so their lines are only wanted when debugging.
    if logging.getLogger().level > logging.DEBUG:
        for name in ("httpx", "onvif", "zeep"):
            logging.getLogger(name).setLevel(logging.WARNING)


def _password(args: argparse.Namespace) -> str | None:
    return args.password if args.password is not None else os.environ.get(PASSWORD_ENV)


def _run_async(args: argparse.Namespace, job: Callable[[], Awaitable[int]]) -> int:
    from devices.onvif import (
        AuthError,
        NotSupportedError,
        OnvifError,
        RefusedError,
    )

    _quiet_libraries()
    try:
        return asyncio.run(job())
    except ValueError as exc:  # the driver checks arguments before sending anything
        _emit_error(args, exc)
        return EXIT_USAGE
    except (AuthError, RefusedError, NotSupportedError) as exc:
        _emit_error(args, exc)
        return EXIT_REFUSED
    except OnvifError as exc:
        _emit_error(args, exc)
        return EXIT_UNREACHABLE


def _run(args: argparse.Namespace, job: Callable[[OnvifCamera], Awaitable[int]]) -> int:
    """Connect (which reads the clock, services, identity and profiles), run ``job``, close."""
    from devices.onvif import OnvifCamera

    password = _password(args)
    if not password:
        print(f"error: give the camera's password with --password or in {PASSWORD_ENV}",
              file=sys.stderr)
        return EXIT_USAGE
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE

    async def main() -> int:
        async with OnvifCamera(args.host, args.port, args.user, password,
                               timeout_s=args.timeout) as cam:
            return await job(cam)

    return _run_async(args, main)


def _ptz_profile(cam: OnvifCamera, args: argparse.Namespace) -> str:
    """--profile, or the first profile with a PTZ configuration."""
    assert cam.facts is not None
    if args.profile:
        return str(args.profile)
    for p in cam.facts.profiles:
        if p.ptz:
            return p.token
    return cam.facts.profiles[0].token if cam.facts.profiles else ""


async def _wait_idle(cam: OnvifCamera, profile: str, limit_s: float) -> PtzStatus:
    """Poll the status until the head stops or ``limit_s`` passes (then the last status)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    status = await cam.ptz_status(profile)
    while status.moving and loop.time() < deadline:
        await asyncio.sleep(IDLE_POLL_S)
        status = await cam.ptz_status(profile)
    return status


# --------------------------------------------------------------------------- commands


def parse_target(text: str, default_port: int) -> tuple[str, int]:
    """``HOST``, ``HOST:PORT``, ``[IPv6]:PORT`` → (host, port)."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise argparse.ArgumentTypeError(f"{text!r}: expected [ADDRESS]:PORT")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        port = _port(port_text, text)
    if not host:
        raise argparse.ArgumentTypeError(f"{text!r}: no host")
    return host, port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise argparse.ArgumentTypeError(f"{whole!r}: port must be 1..65535")
    return int(text)


def cmd_discover(args: argparse.Namespace) -> int:
    from devices.onvif.discovery import PORT, local_name, probe, scope_value

    try:
        targets = [parse_target(t, PORT) for t in args.targets]
    except argparse.ArgumentTypeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.timeout <= 0:
        print("error: --timeout must be positive", file=sys.stderr)
        return EXIT_USAGE

    async def job() -> int:
        found = await probe(targets, timeout_s=args.timeout)
        if args.json:
            _print_json([{"endpoint_ref": d.endpoint_ref, "xaddrs": list(d.xaddrs),
                          "scopes": list(d.scopes), "types": [local_name(t) for t in d.types],
                          "name": scope_value(d.scopes, "name"),
                          "hardware": scope_value(d.scopes, "hardware"),
                          "city": scope_value(d.scopes, "location/city")} for d in found])
            return 0
        for d in found:
            print(f"{', '.join(d.xaddrs) or '(no address given)'}")
            print(f"  id        {d.endpoint_ref}")
            print(f"  name      {scope_value(d.scopes, 'name') or '-'}   hardware "
                  f"{scope_value(d.scopes, 'hardware') or '-'}   city "
                  f"{scope_value(d.scopes, 'location/city') or '-'}")
            print(f"  types     {' '.join(local_name(t) for t in d.types) or '-'}")
        print(f"{len(found)} camera(s) answered of {len(targets)} address(es) probed",
              file=sys.stderr)
        return 0

    return _run_async(args, job)


def cmd_info(args: argparse.Namespace) -> int:
    async def job(cam: OnvifCamera) -> int:
        facts = cam.facts
        assert facts is not None
        if args.json:
            _print_json({"host": args.host, "port": args.port, **asdict(facts)})
            return 0
        profiles = ", ".join(f"{p.token} ({p.encoding} {p.width}×{p.height}"
                             f"{', PTZ' if p.ptz else ''})" for p in facts.profiles)
        print("\n".join([
            f"Camera {cam.where} — {facts.manufacturer} {facts.model}, firmware "
            f"{facts.firmware}, s/n {facts.serial}, hardware {facts.hardware_id}",
            f"  services  media{', PTZ' if facts.has_ptz else ''}"
            f"{', events' if facts.has_events else ''}",
            f"  profiles  {profiles or 'none'}",
            f"  clock     {_offset_text(facts.clock_offset_s)}",
        ]))
        return 0
    return _run(args, job)


def cmd_profiles(args: argparse.Namespace) -> int:
    from devices.onvif import OnvifError

    async def job(cam: OnvifCamera) -> int:
        rows = []
        for p in await cam.profiles():
            row: dict[str, Any] = asdict(p)
            for key, read in (("stream_uri", cam.stream_uri), ("snapshot_uri", cam.snapshot_uri)):
                try:
                    row[key] = await read(p.token)
                except OnvifError as exc:  # one profile without a URI: say so, list the rest
                    row[key] = None
                    row[key + "_error"] = str(exc)
            rows.append(row)
        if args.json:
            _print_json(rows)
            return 0
        for r in rows:
            print(f"{r['token']:<16} {r['name']:<16} {r['encoding']:<5} "
                  f"{r['width']}×{r['height']}{'  PTZ' if r['ptz'] else ''}")
            print(f"  stream    {r['stream_uri'] or r.get('stream_uri_error')}")
            print(f"  snapshot  {r['snapshot_uri'] or r.get('snapshot_uri_error')}")
        return 0
    return _run(args, job)


def cmd_snapshot(args: argparse.Namespace) -> int:
    async def job(cam: OnvifCamera) -> int:
        jpeg = await cam.snapshot(args.profile)
        Path(args.out).write_bytes(jpeg)
        if args.json:
            _print_json({"ok": True, "out": str(args.out), "bytes": len(jpeg),
                         "profile": args.profile})
        else:
            print(f"saved {len(jpeg)} bytes of JPEG to {args.out}")
        return 0
    return _run(args, job)


def cmd_time(args: argparse.Namespace) -> int:
    async def job(cam: OnvifCamera) -> int:
        offset_s = await cam.clock_offset_s()
        camera_utc = datetime.now(UTC) + timedelta(seconds=offset_s)
        off = abs(offset_s) > args.max_offset
        if args.json:
            _print_json({"clock_offset_s": round(offset_s, 3),
                         "camera_utc": camera_utc.isoformat(timespec="seconds"),
                         "max_offset_s": args.max_offset, "ok": not off})
        else:
            print(f"{camera_utc:%Y-%m-%d %H:%M:%S} UTC on the camera ({_offset_text(offset_s)})")
        if off and not args.json:
            print(f"warning: the camera clock is {offset_s:+.1f} s off (more than "
                  f"{args.max_offset:g} s): its pictures and events carry the wrong time. Set "
                  "an NTP server in the camera's settings (Date and Time).", file=sys.stderr)
        return 0
    return _run(args, job)


def cmd_ptz(args: argparse.Namespace) -> int:
    async def job(cam: OnvifCamera) -> int:
        profile = _ptz_profile(cam, args)
        data: dict[str, Any] = {"ok": True, "action": args.ptz_action, "profile": profile}
        text = ""
        action = args.ptz_action
        if action == "status":
            status = await cam.ptz_status(profile)
            data["status"], text = _status_json(status), _status_text(status)
        elif action == "move":
            await cam.ptz_continuous(profile, args.pan, args.tilt, args.zoom,
                                     timeout_s=args.duration)
            # Stop explicitly too: some cameras ignore the Timeout of a ContinuousMove.
            await asyncio.sleep(args.duration)
            await cam.ptz_stop(profile)
            status = await cam.ptz_status(profile)
            data["status"], text = _status_json(status), "moved; now " + _status_text(status)
        elif action in ("relative", "absolute"):
            if action == "relative":
                await cam.ptz_relative(profile, args.pan, args.tilt, args.zoom)
            else:
                now = await cam.ptz_status(profile)  # an axis not given stays where it is
                await cam.ptz_absolute(profile, now.pan if args.pan is None else args.pan,
                                       now.tilt if args.tilt is None else args.tilt,
                                       now.zoom if args.zoom is None else args.zoom)
            status = await _wait_idle(cam, profile, args.wait)
            data["status"], text = _status_json(status), "now " + _status_text(status)
        elif action == "stop":
            await cam.ptz_stop(profile)
            status = await cam.ptz_status(profile)
            data["status"], text = _status_json(status), "stopped; " + _status_text(status)
        elif action == "presets":
            presets = await cam.presets(profile)
            data["presets"] = [asdict(p) for p in presets]
            text = "\n".join([_preset_text(p) for p in presets] + [f"{len(presets)} presets"])
        elif action == "preset-set":
            token = await cam.set_preset(profile, args.name)
            data["token"], text = token, f"preset {args.name!r} saved as token {token}"
        elif action == "preset-goto":
            await cam.goto_preset(profile, args.token)
            status = await _wait_idle(cam, profile, args.wait)
            data["status"] = _status_json(status)
            text = f"at preset {args.token}: " + _status_text(status)
        elif action == "preset-remove":
            await cam.remove_preset(profile, args.token)
            text = f"preset {args.token} removed"
        else:  # pragma: no cover - argparse only offers the actions above
            raise AssertionError(action)
        if args.json:
            _print_json(data)
        else:
            print(text)
        return 0
    return _run(args, job)


# --------------------------------------------------------------------------- parser


def add_parser(kinds: argparse._SubParsersAction) -> None:
    """Register `onvif` on the `kota device` subparsers."""
    onvif = kinds.add_parser(
        "onvif", help="ONVIF IP camera (discovery, identity, profiles, snapshot, PTZ, clock)",
        description="Find and probe an ONVIF Profile S camera (real, or `kota sim camera`) "
        "through the edge camera agent's driver: WS-Discovery by unicast, device facts, media "
        "profiles with their stream and snapshot URIs, a JPEG snapshot, PTZ moves and presets, "
        "and the camera clock. The driver reads the camera clock first and signs with it, so "
        "a camera whose clock is off still accepts the password (`time` shows how far off).",
        epilog="Examples: `kota device onvif discover 192.168.1.64 10.1.2.3:3702`; "
        "`kota device onvif info --host 192.168.1.64 --password rahasia`; "
        "`KOTA_ONVIF_PASSWORD=rahasia kota device onvif snapshot --host 192.168.1.64 --out "
        "simpang.jpg`; `kota device onvif ptz move --host 10.1.2.3 --pan 0.5 --duration 1`; "
        "`kota device onvif ptz preset-set 'Simpang utara' --host 10.1.2.3`. Against the "
        "emulator: `kota sim camera --port 8080 --discovery-port 3702`, then `kota device "
        "onvif info --port 8080 --password kamera123`. Exit codes: 0 done, 1 unreachable, "
        "timed out or a garbled answer, 2 bad arguments, 4 refused by the camera (wrong user "
        "or password, an unknown profile or preset, a feature it lacks such as PTZ).")
    actions = onvif.add_subparsers(dest="onvif_action", metavar="ACTION", required=True)

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON instead of text")
    common = argparse.ArgumentParser(add_help=False, parents=[output])
    common.add_argument("--host", default="127.0.0.1", help="camera address (default "
                        "127.0.0.1; `discover` finds it, or the camera's label or DHCP list)")
    common.add_argument("--port", type=int, default=DEFAULT_PORT, help="HTTP port of its "
                        f"ONVIF service (default {DEFAULT_PORT}; some cameras use 8000 or 8080)")
    common.add_argument("--user", default="admin", help="ONVIF user (default admin)")
    common.add_argument("--password", help=f"its password (default: ${PASSWORD_ENV}; prefer "
                        "the variable, a command line is visible to other users)")
    common.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help=f"seconds to wait for each answer (default {DEFAULT_TIMEOUT_S:g})")
    profile = argparse.ArgumentParser(add_help=False)

    def add(parent: argparse._SubParsersAction, name: str, help_: str,
            func: Callable[[argparse.Namespace], int], description: str | None = None,
            parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=description or help_,
                              parents=[common] if parents is None else parents)
        p.set_defaults(func=func)
        return p

    discover = add(actions, "discover", "ask addresses who is an ONVIF camera (WS-Discovery)",
                   cmd_discover, "Send a WS-Discovery Probe for ONVIF video devices by unicast "
                   "UDP to each address given and list the cameras that answer: their device "
                   "service address, stable id, name, hardware and city scopes. Nothing is "
                   "multicast (a camera on another subnet or behind a router answers only to "
                   "its own address). No password needed.", parents=[output])
    discover.add_argument("targets", nargs="+", metavar="HOST[:PORT]", help="address to probe, "
                          "repeatable (port default 3702; [IPv6]:PORT for IPv6)")
    discover.add_argument("--timeout", type=float, default=DEFAULT_DISCOVERY_TIMEOUT_S,
                          metavar="S", help="seconds to wait for answers (default "
                          f"{DEFAULT_DISCOVERY_TIMEOUT_S:g}; less when every address answered)")

    add(actions, "info", "identity, firmware, serial, services, profiles, clock", cmd_info)
    add(actions, "profiles", "media profiles with their RTSP stream and snapshot URIs",
        cmd_profiles)
    snap = add(actions, "snapshot", "save a JPEG picture from the camera", cmd_snapshot,
               "Fetch a JPEG from the profile's snapshot URI (HTTP digest, or basic when the "
               "camera refuses digest) and save it.")
    snap.add_argument("--out", required=True, metavar="FILE", help="where to save the JPEG")
    snap.add_argument("--profile", metavar="TOKEN", help="media profile (default: the first "
                      "JPEG profile, else the first with a snapshot)")
    clock = add(actions, "time", "the camera clock and how far it is off", cmd_time,
                "Read the camera clock (GetSystemDateAndTime) and compare it with this "
                "computer's (keep this computer on NTP). Warns when it is off by more than "
                "--max-offset.")
    clock.add_argument("--max-offset", type=float, default=DEFAULT_MAX_OFFSET_S, metavar="S",
                       help=f"warn above S seconds (default {DEFAULT_MAX_OFFSET_S:g})")

    profile.add_argument("--profile", metavar="TOKEN", help="media profile the PTZ command "
                         "names (default: the first with a PTZ configuration)")
    wait = argparse.ArgumentParser(add_help=False)
    wait.add_argument("--wait", type=float, default=10.0, metavar="S", help="wait up to S "
                      "seconds for the head to stop before printing where it is (default 10)")
    ptz = actions.add_parser("ptz", help="pan, tilt, zoom and presets",
                             description="Move a PTZ camera and manage its presets. Positions "
                             "are ONVIF generic values: pan and tilt -1..1, zoom 0..1 (0 wide).")
    ptz_actions = ptz.add_subparsers(dest="ptz_action", metavar="ACTION", required=True)
    with_profile = [common, profile]
    add(ptz_actions, "status", "where the head points and whether it moves", cmd_ptz,
        parents=with_profile)
    move = add(ptz_actions, "move", "move at a speed for a while (continuous move), then stop",
               cmd_ptz, "Continuous move: pan, tilt and zoom velocities -1..1 (negative: left, "
               "down, wide) for --duration seconds, then stop.", parents=with_profile)
    for axis in ("pan", "tilt", "zoom"):
        move.add_argument(f"--{axis}", type=float, default=0.0, metavar="V",
                          help=f"{axis} velocity -1..1 (default 0)")
    move.add_argument("--duration", "--move-timeout", type=float, default=1.0, metavar="S",
                      help="seconds to move (the ONVIF Timeout; default 1)")
    rel = add(ptz_actions, "relative", "move by an amount", cmd_ptz, "Relative move: pan and "
              "tilt by -2..2, zoom by -1..1 (the head stops at its limits).",
              parents=[*with_profile, wait])
    for axis, span in (("pan", "-2..2"), ("tilt", "-2..2"), ("zoom", "-1..1")):
        rel.add_argument(f"--{axis}", type=float, default=0.0, metavar="D",
                         help=f"{axis} change {span} (default 0)")
    absolute = add(ptz_actions, "absolute", "move to a position", cmd_ptz, "Absolute move: pan "
                   "and tilt -1..1, zoom 0..1; an axis not given stays where it is.",
                   parents=[*with_profile, wait])
    for axis, span in (("pan", "-1..1"), ("tilt", "-1..1"), ("zoom", "0..1")):
        absolute.add_argument(f"--{axis}", type=float, metavar="P", help=f"{axis} {span}")
    add(ptz_actions, "stop", "stop any movement", cmd_ptz, parents=with_profile)
    add(ptz_actions, "presets", "list presets (token, name, position)", cmd_ptz,
        parents=with_profile)
    preset_set = add(ptz_actions, "preset-set", "save where the head points as a new preset",
                     cmd_ptz, parents=with_profile)
    preset_set.add_argument("name", help="preset name, 1..64 characters (e.g. 'Simpang utara')")
    goto = add(ptz_actions, "preset-goto", "move to a preset", cmd_ptz,
               parents=[*with_profile, wait])
    goto.add_argument("token", help="preset token (from `ptz presets`)")
    remove = add(ptz_actions, "preset-remove", "delete a preset", cmd_ptz, parents=with_profile)
    remove.add_argument("token", help="preset token (from `ptz presets`)")
