"""The register map's documentation, rendered from the table in ``registers`` (never by hand).

`kota device controller map` prints it; a technician configuring a SCADA tool or a third-party
controller reads the same table the driver and the emulator run on.
"""

from __future__ import annotations

import enum

from devices.controller.registers import (
    BLOCKS,
    DETECTORS_IN_STATUS_READ,
    MAP_VERSION,
    REASON_TEXT,
    Block,
    CommandCode,
    Kind,
    Reason,
    Table,
)

_TABLE_NAME = {Table.INPUT: "input registers (FC 4)", Table.HOLDING: "holding registers (FC 3, 16)"}
_BASE = {Table.INPUT: 30001, Table.HOLDING: 40001}


def _span(block: Block, offset: int, count: int) -> str:
    start = block.address + offset
    if count == 1:
        return f"{start}"
    return f"{start}–{start + count - 1}"


def _range(kind: Kind, low: int, high: int, writable: bool) -> str:
    if not writable or kind in (Kind.ASCII, Kind.MASK, Kind.ENUM, Kind.U32):
        return ""
    return f"{low}–{high}"


def render_markdown() -> str:
    """The whole map as Markdown: one table per block, then the enumerations."""
    out = [
        f"# Traffic controller register map, version {MAP_VERSION}",
        "",
        "Modelled on NTCIP 1202. Addresses are Modbus wire addresses (0-based); the classic "
        "number is 30001 + address for input registers, 40001 + address for holding registers. "
        "Durations in deciseconds (ds), occupancy in 0.1 %, phase masks carry phase n in bit n-1. "
        f"The status block and the first {DETECTORS_IN_STATUS_READ} detectors fit one read.",
        "",
    ]
    enums: dict[str, type[enum.IntEnum]] = {}
    for block in BLOCKS:
        rw = "read/write" if block.writable else "read-only"
        repeat = (f", {block.repeat} records of {block.stride} registers" if block.repeat > 1
                  else "")
        out += [f"## {block.name} — {_TABLE_NAME[block.table]}, {rw}{repeat}", "",
                block.description[0].upper() + block.description[1:] + ".", "",
                "| address | classic | field | type | range | description |",
                "|---|---|---|---|---|---|"]
        at = 0
        for f in block.fields:
            kind = f.enum.__name__ if f.enum else f.kind.value
            if f.enum:
                enums[f.enum.__name__] = f.enum
            span = _span(block, at, f.count)
            classic = _BASE[block.table] + block.address + at
            name = f.name if block.repeat == 1 else f"{f.name}[i] (+{at} + {block.stride}·i)"
            unit = f" ({f.unit})" if f.unit and f.unit != kind else ""
            out.append(f"| {span} | {classic} | {name} | {kind}{unit} | "
                       f"{_range(f.kind, f.low, f.high, block.writable)} | {f.description} |")
            at += f.count
        out.append("")
    out += ["## Enumerations", ""]
    enums.setdefault(CommandCode.__name__, CommandCode)
    for name, values in enums.items():
        out.append(f"**{name}**: " + ", ".join(f"{v.value} {v.name}" for v in values))
        out.append("")
    out += ["## Reason codes (status `last_reason`)", "", "| code | name | meaning |",
            "|---|---|---|"]
    out += [f"| {r.value} | {r.name} | {REASON_TEXT[r]} |" for r in Reason]
    out.append("")
    return "\n".join(out)
