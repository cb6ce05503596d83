"""The recap upload as SIMPEG receives it: validation of each record and the one-record-per
(periode, nip) store with revisions.

Owns what makes an upload accepted, duplicate or rejected. It must not speak HTTP (server.py
hands it parsed JSON) nor touch the idempotency keys (the server replays whole responses).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
)

from simulators.simpeg.world import SimpegWorld, StoredRecap

PERIOD_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"

Count = Annotated[StrictInt, Field(ge=0, le=31)]
Pct = Annotated[StrictFloat | StrictInt, Field(ge=0)]


class CutLineRecord(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tanggal: date
    kode: Annotated[StrictStr, Field(min_length=1, max_length=8)]
    persen: StrictFloat | StrictInt
    keterangan: StrictStr


class RecapRecord(BaseModel):
    """One employee's month (see the package docstring for the field meanings)."""

    model_config = ConfigDict(extra="forbid")
    nip: Annotated[StrictStr, Field(pattern=r"^\d{18}$")]
    periode: Annotated[StrictStr, Field(pattern=PERIOD_RE.pattern)]
    hari_kerja: Count
    hadir: Count
    tl: Annotated[list[Count], Field(min_length=4, max_length=4)]
    psw: Annotated[list[Count], Field(min_length=4, max_length=4)]
    absen: dict[Annotated[StrictStr, Field(pattern=r"^[A-Z]{2,6}$")], Count]
    potongan_persen: Annotated[StrictFloat | StrictInt, Field(ge=0, le=100)]
    potongan_sebelum_batas_persen: Pct
    versi_aturan: Annotated[StrictStr, Field(min_length=1, max_length=120)]
    rincian: list[CutLineRecord]


def content_hash(record: Mapping[str, Any]) -> str:
    """SHA-256 of the record's canonical JSON: the same content, the same hash."""
    canonical = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _field_problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"malformed field {where}: {first['msg']}{more}"


def record_problem(raw: Any, period: str, today: date) -> str | None:
    """Why this record cannot be stored (its shape and arithmetic), or None."""
    if not isinstance(raw, dict):
        return "malformed record: not a JSON object"
    try:
        r = RecapRecord.model_validate(raw)
    except ValidationError as exc:
        return _field_problem(exc)
    if r.periode != period:
        return f"malformed field periode: {r.periode} is not the upload's period {period}"
    if (int(period[:4]), int(period[5:])) > (today.year, today.month):
        return f"period {period} is in the future"
    if r.hadir > r.hari_kerja:
        return f"malformed field hadir: {r.hadir} present days of {r.hari_kerja} working days"
    if r.potongan_persen > r.potongan_sebelum_batas_persen + 1e-9:
        return ("malformed field potongan_persen: the capped cut exceeds the uncapped cut "
                "(potongan_sebelum_batas_persen)")
    for k, line in enumerate(r.rincian):
        if line.tanggal.strftime("%Y-%m") != period:
            return f"malformed field rincian.{k}.tanggal: {line.tanggal} is outside {period}"
    return None


def store_record(world: SimpegWorld, raw: dict[str, Any], period: str,
                 rejected_nips: Mapping[str, str]) -> dict[str, Any]:
    """Validate one record and store it: the per-record result of the upload's response."""
    nip = raw.get("nip") if isinstance(raw, dict) else None
    nip_out = nip if isinstance(nip, str) else ""

    def rejected(reason: str) -> dict[str, Any]:
        stored = world.recap(period, nip_out)
        return {"nip": nip_out, "status": REJECTED, "reason": reason,
                "revision": stored.revision if stored else 0}

    problem = record_problem(raw, period, world.current_date())
    if problem is not None:
        return rejected(problem)
    if nip_out in rejected_nips:
        return rejected(rejected_nips[nip_out])
    employee = world.employees.get(nip_out)
    if employee is None:
        return rejected(f"unknown NIP {nip_out}")
    if not employee.active:
        return rejected(f"inactive employee {nip_out} (aktif=false)")
    digest = content_hash(raw)
    stored = world.recap(period, nip_out)
    if stored is not None and stored.content_hash == digest:
        return {"nip": nip_out, "status": DUPLICATE, "revision": stored.revision}
    revision = stored.revision + 1 if stored else 1
    world.recaps[(period, nip_out)] = StoredRecap(period, nip_out, revision, digest, dict(raw),
                                                  datetime.now(UTC))
    return {"nip": nip_out, "status": ACCEPTED, "revision": revision}
