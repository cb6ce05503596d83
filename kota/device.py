"""`kota device controller …`: the technician's probe of a traffic controller over Modbus TCP.

Readable output for a person on a ladder, `--json` for scripts. Every subcommand talks through
the production driver (`devices.controller.driver`), so what the technician sees is what the
edge agent will see. Exit codes: 0 done, 1 the controller could not be reached or answered
garbage, 2 bad arguments, 4 the controller (or the driver's pre-check) refused the request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from devices.controller.codec import Identity, Plan, Snapshot, Status, mask_of, phases_of
from devices.controller.docs import render_markdown
from devices.controller.driver import CommandOutcome, ControllerClient, PlanTarget
from devices.controller.errors import CommandRejected, ControllerError
from devices.controller.registers import (
    ALARM_BITS,
    INDEFINITE_DS,
    MAX_STAGES,
    REASON_TEXT,
    CommandCode,
    CommandResult,
    Override,
    UnitMode,
)

EXIT_UNREACHABLE = 1
EXIT_USAGE = 2
EXIT_REJECTED = 4


# --------------------------------------------------------------------------- formatting


def _s(ds: int) -> str:
    return "held" if ds == INDEFINITE_DS else f"{ds / 10:.1f} s"


def _phases(mask: int) -> str:
    return "+".join(str(p) for p in phases_of(mask)) or "-"


def _alarms(bits: int) -> str:
    names = [name for name, bit in ALARM_BITS.items() if bits >> bit & 1]
    return ", ".join(names) or "none"


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "name") and hasattr(value, "value"):  # enums by name: readable and stable
        return value.name.lower()
    return value


def _status_json(ident: Identity, status: Status) -> dict[str, Any]:
    data = _jsonable(asdict(status))
    data["signal"] = list(status.lamps(ident.phase_count))
    data["alarm_names"] = [n for n, b in ALARM_BITS.items() if status.alarms >> b & 1]
    return data


def _uptime(seconds: int) -> str:
    h, rem = divmod(seconds, 3600)
    return f"{h} h {rem // 60} min" if h else f"{rem // 60} min {rem % 60} s"


def format_status(where: str, ident: Identity, status: Status) -> str:
    lamps = "  ".join(f"{i + 1}:{lamp}" for i, lamp in enumerate(status.lamps(ident.phase_count)))
    if status.override is Override.NONE:
        override = "none"
    else:
        override = (f"{status.override.name.lower()} phase {status.override_phase or '-'}, "
                    f"{'until release' if status.override_left_ds == INDEFINITE_DS else _s(status.override_left_ds) + ' left'}")
    pending = f"   pending plan {status.pending_plan}" if status.pending_plan else ""
    if status.mode is UnitMode.CENTRAL or status.watchdog_left_ds:
        watchdog = f"{_s(status.watchdog_left_ds)} left"
    else:
        watchdog = "not running (no central plan in force)"
    return "\n".join([
        f"Controller {where} — {ident.vendor} {ident.model}, firmware {ident.firmware}, "
        f"s/n {ident.serial}, {ident.phase_count} phases, {ident.detector_count} detectors",
        f"  mode      {status.mode.name.lower()} ({status.mode_reason.name.lower()})",
        f"  plan      {status.plan}   cycle {_s(status.cycle_ds)}   offset {_s(status.offset_ds)}"
        f"   cycle timer {_s(status.cycle_timer_ds)}{pending}",
        f"  signals   {lamps}",
        f"  interval  stage {status.stage} {status.interval.name.lower()}, "
        f"{_s(status.time_left_ds)}{'' if status.held else ' left'}",
        f"  override  {override}",
        f"  watchdog  {watchdog}",
        f"  alarms    {_alarms(status.alarms)}",
        f"  last cmd  #{status.last_seq} {status.last_result.name.lower()} "
        f"({status.last_reason.name}: {REASON_TEXT[status.last_reason]})",
        f"  uptime    {_uptime(status.uptime_s)}   heartbeat {status.heartbeat}",
    ])


def format_detectors(ident: Identity, snap: Snapshot) -> str:
    lines = [" det  phase   volume  occupancy  status"]
    for i, d in enumerate(snap.detectors):
        call = ident.detector_phase[i] if i < len(ident.detector_phase) else 0
        lines.append(f" {i + 1:>3}  {call or '-':>5}  {d.volume:>7}  {d.occupancy_pct:>8.1f} %  "
                     f"{d.status.name.lower()}")
    if not snap.detectors:
        lines.append("   (no detectors wired)")
    return "\n".join(lines)


def format_plan(which: str, plan: Plan) -> str:
    lines = [f"{which} plan {plan.number}: cycle {_s(plan.cycle_ds)}, offset {_s(plan.offset_ds)}",
             " stage  phases  split"]
    for k, (stage, split) in enumerate(zip(plan.stages, plan.splits_ds, strict=True)):
        lines.append(f" {k + 1:>5}  {_phases(stage):>6}  {_s(split)}")
    return "\n".join(lines)


def _outcome_text(outcome: CommandOutcome) -> str:
    return (f"{outcome.code.name.lower()}: {outcome.result.name.lower()} (command #{outcome.seq})"
            + (" — waits for the next safe point of the cycle" if outcome.result is CommandResult.PENDING
               else ""))


# --------------------------------------------------------------------------- running


def _client(args: argparse.Namespace) -> ControllerClient:
    return ControllerClient(args.host, args.port, args.unit, timeout_s=args.timeout)


def _run(args: argparse.Namespace, job: Callable[[ControllerClient], Awaitable[int]]) -> int:
    async def main() -> int:
        client = _client(args)
        try:
            await client.connect()
            return await job(client)
        finally:
            client.close()

    try:
        return asyncio.run(main())
    except CommandRejected as exc:
        _emit_error(args, exc, reason=exc.reason.name)
        return EXIT_REJECTED
    except ControllerError as exc:
        _emit_error(args, exc)
        return EXIT_UNREACHABLE


def _emit_error(args: argparse.Namespace, exc: Exception, reason: str | None = None) -> None:
    if args.json:
        print(json.dumps({"ok": False, "error": str(exc), "reason": reason}))
    else:
        print(f"error: {exc}", file=sys.stderr)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False))


def cmd_status(args: argparse.Namespace) -> int:
    async def job(c: ControllerClient) -> int:
        ident = await c.identity()
        status = await c.status()
        if args.json:
            _print_json({"identity": _jsonable(asdict(ident)), "status": _status_json(ident, status)})
        else:
            print(format_status(c.where, ident, status))
        return 0
    return _run(args, job)


def cmd_watch(args: argparse.Namespace) -> int:
    async def job(c: ControllerClient) -> int:
        ident = await c.identity()
        shown = 0
        while args.count is None or shown < args.count:
            started = time.monotonic()
            try:
                snap = await c.snapshot()
            except ControllerError as exc:  # keep watching: a technician wants to see it return
                print(f"{time.strftime('%H:%M:%S')}  no answer: {exc}", flush=True)
            else:
                st = snap.status
                if args.json:
                    _print_json({"t": time.time(), "status": _status_json(ident, st),
                                 "detectors": _jsonable([asdict(d) for d in snap.detectors])})
                else:
                    lamps = "".join(st.lamps(ident.phase_count))
                    occ = " ".join(f"{d.occupancy_pct:4.0f}" for d in snap.detectors[:8])
                    print(f"{time.strftime('%H:%M:%S')}  {st.mode.name.lower():<14} plan {st.plan:<3} "
                          f"t={_s(st.cycle_timer_ds):>7}  {lamps:<16} stage {st.stage} "
                          f"{st.interval.name.lower():<7} {_s(st.time_left_ds):>7}  "
                          f"alarms: {_alarms(st.alarms)}  occ%: {occ}", flush=True)
            shown += 1
            if args.count is None or shown < args.count:
                await asyncio.sleep(max(0.0, args.interval - (time.monotonic() - started)))
        return 0

    try:
        return _run(args, job)
    except KeyboardInterrupt:
        return 0


def cmd_detectors(args: argparse.Namespace) -> int:
    async def job(c: ControllerClient) -> int:
        ident = await c.identity()
        snap = await c.snapshot()
        if args.json:
            _print_json([{"detector": i + 1, "call_phase": ident.detector_phase[i],
                          **_jsonable(asdict(d)), "occupancy_pct": d.occupancy_pct}
                         for i, d in enumerate(snap.detectors)])
        else:
            print(format_detectors(ident, snap))
        return 0
    return _run(args, job)


def cmd_plan_show(args: argparse.Namespace) -> int:
    async def job(c: ControllerClient) -> int:
        plan = await c.plan(args.which)
        if args.json:
            _print_json({"which": args.which, **_jsonable(asdict(plan)),
                         "stage_phases": [list(phases_of(s)) for s in plan.stages]})
        else:
            print(format_plan(args.which, plan))
        return 0
    return _run(args, job)


def parse_stages(text: str | None, count: int) -> tuple[int, ...]:
    """``"1,2,3+5,4"`` → masks; default: phase k alone in stage k."""
    if not text:
        return tuple(1 << k for k in range(count))
    stages = []
    for item in text.split(","):
        try:
            phases = [int(p) for p in item.split("+")]
            stages.append(mask_of(phases))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"stage {item!r}: {exc}") from exc
    return tuple(stages)


def _seconds_to_ds(text: str) -> int:
    value = float(text)
    if value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text}: seconds must be ≥ 0")
    return round(value * 10)


def cmd_plan_write(args: argparse.Namespace) -> int:
    try:
        splits = tuple(_seconds_to_ds(s) for s in args.splits.split(","))
        stages = parse_stages(args.stages, len(splits))
    except (ValueError, argparse.ArgumentTypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if len(stages) != len(splits) or len(stages) > MAX_STAGES:
        print(f"error: {len(stages)} stages and {len(splits)} splits: give one split per stage "
              f"(at most {MAX_STAGES})", file=sys.stderr)
        return EXIT_USAGE
    cycle_ds = _seconds_to_ds(args.cycle) if args.cycle else sum(splits)
    plan = Plan(args.number, cycle_ds, _seconds_to_ds(args.offset), stages, splits)
    target = PlanTarget.LOCAL if args.local else PlanTarget.CENTRAL

    async def job(c: ControllerClient) -> int:
        outcome = await c.write_plan(plan, target, precheck=not args.no_precheck)
        status = outcome.status
        if args.wait and target is PlanTarget.CENTRAL and outcome.result is CommandResult.PENDING:
            status = await c.wait_applied(plan.number, timeout_s=args.wait)
        if args.json:
            _print_json({"ok": True, "seq": outcome.seq, "result": outcome.result.name.lower(),
                         "running_plan": status.plan, "pending_plan": status.pending_plan})
        else:
            print(f"plan {plan.number} → {target.value}: " + _outcome_text(outcome))
            if args.wait and status.plan == plan.number:
                print(f"plan {plan.number} is running")
        return 0
    return _run(args, job)


_OVERRIDES = {"hold": CommandCode.HOLD, "force": CommandCode.FORCE, "flash": CommandCode.FLASH,
              "release": CommandCode.RELEASE, "clear-fault": CommandCode.CLEAR_FAULT}


def cmd_override(args: argparse.Namespace) -> int:
    code = _OVERRIDES[args.action]
    if code in (CommandCode.HOLD, CommandCode.FORCE) and not args.phase:
        print(f"error: {args.action} needs --phase N", file=sys.stderr)
        return EXIT_USAGE
    duration_ds = round(args.duration * 10) if args.duration else 0

    async def job(c: ControllerClient) -> int:
        outcome = await c.command(code, args.phase or 0, duration_ds)
        if args.json:
            _print_json({"ok": True, "seq": outcome.seq, "command": args.action,
                         "result": outcome.result.name.lower()})
        else:
            print(_outcome_text(outcome))
        return 0
    return _run(args, job)


def cmd_map(args: argparse.Namespace) -> int:
    print(render_markdown())
    return 0


# --------------------------------------------------------------------------- parser


def add_device_parser(sub: argparse._SubParsersAction) -> None:
    device = sub.add_parser("device", help="probe a device as a technician (traffic controller, "
                            "attendance machine, camera)",
                            description="Talk to one field device directly, from a laptop.")
    kinds = device.add_subparsers(dest="device_kind", metavar="KIND", required=True)
    from kota.device_onvif import add_parser as add_onvif_parser
    from kota.device_zk import add_parser as add_zk_parser

    add_zk_parser(kinds)
    add_onvif_parser(kinds)
    ctl = kinds.add_parser(
        "controller", help="traffic signal controller over Modbus TCP",
        description="Read and command a traffic signal controller (real or `kota sim controller`) "
        "over Modbus TCP, with the register map of `kota device controller map`.",
        epilog="Exit codes: 0 done, 1 unreachable or garbled reply, 2 bad arguments, "
        "4 refused by the controller or by the pre-check (the reason code is printed).")
    actions = ctl.add_subparsers(dest="controller_action", metavar="ACTION", required=True)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--host", default="127.0.0.1", help="controller address (default 127.0.0.1)")
    common.add_argument("--port", type=int, default=502, help="Modbus TCP port (default 502)")
    common.add_argument("--unit", type=int, default=1, help="Modbus unit id (default 1)")
    common.add_argument("--timeout", type=float, default=2.0, metavar="S",
                        help="seconds to wait for each answer (default 2)")
    common.add_argument("--json", action="store_true", help="print JSON instead of text")

    def add(parent: argparse._SubParsersAction, name: str, help_: str,
            func: Callable[[argparse.Namespace], int], description: str | None = None,
            parents: list[argparse.ArgumentParser] | None = None) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_, description=description or help_,
                              parents=[common] if parents is None else parents)
        p.set_defaults(func=func)
        return p

    add(actions, "status", "identity, mode, plan, signals, override, watchdog, alarms", cmd_status)
    watch = add(actions, "watch", "one status line per second until Ctrl-C", cmd_watch,
                "Poll status and detectors (as the edge agent does) and print one line each time; "
                "keeps going while the controller is unreachable.")
    watch.add_argument("--interval", type=float, default=1.0, metavar="S", help="seconds between "
                       "polls (default 1)")
    watch.add_argument("--count", type=int, metavar="N", help="stop after N polls")
    add(actions, "detectors", "per detector: call phase, volume, occupancy, diagnostics",
        cmd_detectors)

    plan = actions.add_parser("plan", help="show or write a timing plan",
                              description="Show the running, local or shadow plan, or write one.")
    plan_sub = plan.add_subparsers(dest="plan_action", metavar="ACTION", required=True)
    show = add(plan_sub, "show", "print a plan: stages, phases, splits", cmd_plan_show)
    show.add_argument("--which", choices=["running", "local", "shadow"], default="running",
                      help="which plan (default running)")
    write = add(plan_sub, "write", "write a plan to the shadow block, commit it, confirm it",
                cmd_plan_write,
                "Write a plan and commit it. The controller takes a central plan at the next safe "
                "point of the cycle (the result is 'pending' until then). Example: "
                "--number 3 --splits 25,25,20,20 (four stages of one phase each, cycle 90 s); "
                "--stages 1+5,2+5,3+4 --splits 30,30,30 for stages of several phases.")
    write.add_argument("--number", type=int, required=True, help="plan number 1..255")
    write.add_argument("--splits", required=True, metavar="S,S,…",
                       help="split of each stage in seconds (green plus clearance to the next)")
    write.add_argument("--stages", metavar="P[+P],…", help="phases of each stage, e.g. 1,2,3+5 "
                       "(default: phase k alone in stage k)")
    write.add_argument("--cycle", metavar="S", help="cycle length in seconds (default: sum of "
                       "splits; the controller refuses a cycle the splits do not add up to)")
    write.add_argument("--offset", default="0", metavar="S", help="offset in seconds (default 0)")
    write.add_argument("--local", action="store_true", help="make it the controller's local "
                       "fallback plan instead of the central plan")
    write.add_argument("--no-precheck", action="store_true", help="send even if the driver's "
                       "safety pre-check refuses it, to see the controller's own answer")
    write.add_argument("--wait", type=float, metavar="S", help="wait up to S seconds until the "
                       "plan is running")

    override = add(actions, "override", "hold, force, flash, release, clear-fault", cmd_override,
                   "Manual override, confirmed through the result register. hold: go to the stage "
                   "serving --phase and keep it green; force: jump to it and continue the plan; "
                   "flash: flashing yellow; release: back to the plan; clear-fault: reset after a "
                   "conflict-monitor flash.")
    override.add_argument("action", choices=list(_OVERRIDES), help="which override")
    override.add_argument("--phase", type=int, help="phase for hold and force")
    override.add_argument("--duration", type=float, metavar="S", help="end the override by itself "
                          "after S seconds (default: until release)")

    add(actions, "map", "print the register map (Markdown, generated from the driver's table)",
        cmd_map, parents=[])
