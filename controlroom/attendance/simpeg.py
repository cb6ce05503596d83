"""The control room's SIMPEG adapter: employees, units and leave in; monthly recaps out.

Owns the HTTP conversation with SIMPEG (OAuth2 client-credentials token, paging, retries with
back-off, idempotent recap upload) and the validation of everything SIMPEG answers: a
malformed record is logged, skipped and counted, never allowed to stop a sync. It must not
touch the database nor compute recaps (recap.py and the rules do); the API it speaks is
documented in the README ("SIMPEG recap upload format") and by the emulator in
``simulators/simpeg``, which it must not import.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictStr,
    ValidationError,
)

from controlroom.attendance.recap import EmployeeRecap

log = logging.getLogger(__name__)

PERIOD_RE = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
TOKEN_PATH = "/oauth/token"
UNITS_PATH = "/api/v1/unor"
EMPLOYEES_PATH = "/api/v1/pns"
EMPLOYEE_PATH = "/api/v1/pns/data-utama/{nip}"
LEAVE_PATH = "/api/v1/cuti"
RECAP_PATH = "/api/v1/rekap-kehadiran"
MAX_BATCH = 1000  # SIMPEG takes at most this many records per upload
PCT_DECIMALS = 4  # percentages are rounded so float noise never makes a "changed" recap
# A token is renewed this long before SIMPEG says it expires (at most a tenth of its life),
# so a long paged sync does not run into the expiry; a 401 still renews it once.
TOKEN_MARGIN_S = 30.0
LEAVE_KINDS = frozenset({"CT", "CS", "CM", "CAP", "CB", "CBS", "CLTN", "DL", "TB", "IT", "IPC"})

T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class SimpegError(Exception):
    """SIMPEG refused a request (HTTP 4xx) or answered something unusable; ``status`` and
    ``reason`` are the server's when it gave them."""

    def __init__(self, message: str, *, status: int | None = None, reason: str | None = None):
        super().__init__(message)
        self.status = status
        self.reason = reason


class SimpegAuthError(SimpegError):
    """SIMPEG refused the client credentials, or a freshly issued token."""


class SimpegUnavailable(SimpegError):
    """SIMPEG did not answer usefully (5xx, timeout, connection) within the retries."""


# --------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class SimpegUnit:
    id: str
    name: str
    parent_id: str | None
    skpd_id: str

    @property
    def is_skpd(self) -> bool:
        return self.skpd_id == self.id


@dataclass(frozen=True, slots=True)
class MachineUserId:
    """An attendance machine user id that stands for this employee: on the machine with serial
    ``sn``, or on any machine when ``sn`` is "" (newer machines enrol staff by NIP)."""

    sn: str
    user_id: str


@dataclass(frozen=True, slots=True)
class SimpegEmployee:
    nip: str
    name: str
    unit_id: str
    position: str  # jabatan
    schedule_group: str  # kelompok_jadwal: "reguler", "shift", or a region's own group
    machine_ids: tuple[MachineUserId, ...]
    active: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class SimpegLeave:
    id: str
    nip: str
    kind: str  # jenis: CT, CS, CM, CAP, CB, CBS, CLTN, DL, TB, IT, IPC
    first_day: date
    last_day: date  # inclusive
    reference: str  # nomor_surat
    cancelled: bool  # status "dibatalkan": the leave no longer excuses these days
    updated_at: datetime

    def covers(self, day: date) -> bool:
        return not self.cancelled and self.first_day <= day <= self.last_day


@dataclass(frozen=True, slots=True)
class SkippedRecord:
    """A record SIMPEG sent that failed validation, and why (the field and the problem)."""

    kind: str  # "unit", "employee", "leave"
    key: str  # its id or NIP when it had one, else "#<position in the answer>"
    problem: str


class Fetched(list[T], Generic[T]):
    """The records of one fetch, plus ``skipped``: those SIMPEG sent malformed."""

    def __init__(self, items: Iterable[T] = (), skipped: Iterable[SkippedRecord] = ()) -> None:
        super().__init__(items)
        self.skipped: tuple[SkippedRecord, ...] = tuple(skipped)


@dataclass(frozen=True, slots=True)
class UploadReport:
    """What one ``upload_recaps`` call changed in SIMPEG."""

    accepted: int  # stored as new content (first revision or a new one)
    duplicate: int  # SIMPEG already held exactly this content
    rejected: tuple[tuple[str, str], ...]  # (nip, SIMPEG's reason)
    revised: int = 0  # of the accepted, those that replaced an earlier revision
    batches: int = 0


# --------------------------------------------------------------------------- wire models

_Nip = Annotated[StrictStr, Field(pattern=r"^\d{18}$")]
_Text = Annotated[StrictStr, Field(min_length=1)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")  # SIMPEG may add fields; we read ours


class _UnitWire(_Wire):
    id: _Text
    nama: _Text
    induk_id: _Text | None
    skpd_id: _Text


class _MachineIdWire(_Wire):
    sn: StrictStr
    user_id: _Text


class _EmployeeWire(_Wire):
    nip: _Nip
    nama: _Text
    unor_id: _Text
    jabatan: StrictStr
    kelompok_jadwal: _Text
    id_mesin: list[_MachineIdWire]
    aktif: StrictBool
    updated_at: AwareDatetime


class _LeaveWire(_Wire):
    id: _Text
    nip: _Nip
    jenis: _Text
    mulai: date
    selesai: date
    nomor_surat: StrictStr
    status: Literal["disetujui", "dibatalkan"]
    updated_at: AwareDatetime


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
    return f"field {where}: {first['msg']}{more}"


def _unit(w: _UnitWire) -> SimpegUnit:
    return SimpegUnit(w.id, w.nama, w.induk_id, w.skpd_id)


def _employee(w: _EmployeeWire) -> SimpegEmployee:
    return SimpegEmployee(w.nip, w.nama, w.unor_id, w.jabatan, w.kelompok_jadwal,
                          tuple(MachineUserId(m.sn, m.user_id) for m in w.id_mesin), w.aktif,
                          w.updated_at)


def _leave(w: _LeaveWire) -> SimpegLeave:
    if w.jenis not in LEAVE_KINDS:
        raise ValueError(f"field jenis: unknown leave code {w.jenis!r} (known: "
                         f"{', '.join(sorted(LEAVE_KINDS))})")
    if w.selesai < w.mulai:
        raise ValueError(f"field selesai: {w.selesai} is before mulai {w.mulai}")
    return SimpegLeave(w.id, w.nip, w.jenis, w.mulai, w.selesai, w.nomor_surat,
                       w.status == "dibatalkan", w.updated_at)


def _parse_all(kind: str, key_field: str, rows: Iterable[Any], model: type[BaseModel],
               build: Callable[[Any], T]) -> Fetched[T]:
    items: list[T] = []
    skipped: list[SkippedRecord] = []
    for k, row in enumerate(rows):
        key = row.get(key_field) if isinstance(row, dict) else None
        key = key if isinstance(key, str) and key else f"#{k}"
        try:
            if not isinstance(row, dict):
                raise ValueError("not a JSON object")
            items.append(build(model.model_validate(row)))
        except ValidationError as exc:
            skipped.append(SkippedRecord(kind, key, _problem(exc)))
        except ValueError as exc:
            skipped.append(SkippedRecord(kind, key, str(exc)))
        else:
            continue
        log.warning("SIMPEG sent a malformed %s record %s (%s); skipped", kind, key,
                    skipped[-1].problem)
    return Fetched(items, skipped)


# --------------------------------------------------------------------------- recap records


def _pct(value: float) -> float:
    return round(float(value), PCT_DECIMALS) + 0.0  # + 0.0: never send -0.0


def recap_record(r: EmployeeRecap) -> dict[str, Any]:
    """The upload record of one employee's month (the README's "SIMPEG recap upload format").
    Zero-day absence codes are left out and percentages rounded, so the same month always
    gives the same record, and the same content hash."""
    return {
        "nip": r.nip,
        "periode": r.period,
        "hari_kerja": r.working_days,
        "hadir": r.present_days,
        "tl": [int(n) for n in r.tl],
        "psw": [int(n) for n in r.psw],
        "absen": {code: int(r.absences[code]) for code in sorted(r.absences)
                  if r.absences[code]},
        "potongan_persen": _pct(r.cut_pct),
        "potongan_sebelum_batas_persen": _pct(r.cut_uncapped_pct),
        "versi_aturan": r.rules_version,
        "rincian": [{"tanggal": line.day.isoformat(), "kode": line.code,
                     "persen": _pct(line.pct), "keterangan": line.text_id}
                    for line in r.lines],
    }


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def idempotency_key(period: str, records: Sequence[dict[str, Any]], attempt: str = "") -> str:
    """The same batch (period, NIPs, content) always has the same key, so a batch retried
    after its answer was lost is replayed or found duplicate, never stored twice."""
    ordered = sorted(records, key=lambda rec: rec["nip"])
    content = hashlib.sha256(_canonical(ordered)).hexdigest()
    nips = ",".join(rec["nip"] for rec in ordered)
    digest = hashlib.sha256(f"{period}\n{nips}\n{content}\n{attempt}".encode()).hexdigest()
    return f"kotapintar-rekap-{period}-{digest[:40]}"


# --------------------------------------------------------------------------- the client


class SimpegClient:
    """A synchronous client for one SIMPEG; call it from a worker thread (or
    ``asyncio.to_thread``). Not thread-safe: one client per thread."""

    def __init__(self, base_url: str, client_id: str, client_secret: SecretStr | str, *,
                 timeout_s: float = 10.0, retries: int = 3, backoff_s: float = 0.5,
                 backoff_max_s: float = 8.0, per_page: int = 500,
                 transport: httpx.BaseTransport | None = None) -> None:
        if retries < 0 or timeout_s <= 0 or backoff_s < 0 or not 1 <= per_page <= 1000:
            raise ValueError("retries >= 0, timeout_s > 0, backoff_s >= 0, per_page 1..1000")
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self._secret = (client_secret if isinstance(client_secret, SecretStr)
                        else SecretStr(client_secret))
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.per_page = per_page
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout_s,
                                  transport=transport,
                                  headers={"Accept": "application/json",
                                           "User-Agent": "kotapintar-controlroom"})
        self._token: str | None = None
        self._token_renew_at_s = 0.0  # monotonic

    def __repr__(self) -> str:
        return f"SimpegClient({self.base_url!r}, client_id={self.client_id!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SimpegClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ reading

    def units(self) -> Fetched[SimpegUnit]:
        """Every organisation unit (all pages)."""
        return _parse_all("unit", "id", self._pages(UNITS_PATH, {}), _UnitWire, _unit)

    def employees(self, updated_since: datetime | None = None) -> Fetched[SimpegEmployee]:
        """Every employee (all pages), or those changed since ``updated_since`` (aware)."""
        params: dict[str, str] = {}
        if updated_since is not None:
            if updated_since.tzinfo is None:
                raise ValueError("updated_since must carry a time zone")
            params["updated_since"] = updated_since.isoformat()
        fetched = _parse_all("employee", "nip", self._pages(EMPLOYEES_PATH, params),
                             _EmployeeWire, _employee)
        # Offset paging over a list that changes during the sync can repeat a record; keep one.
        unique = {e.nip: e for e in fetched}
        return Fetched(unique.values(), fetched.skipped)

    def employee(self, nip: str) -> SimpegEmployee | None:
        """One employee's master data (``/pns/data-utama/{nip}``), None if SIMPEG has no such
        NIP; a malformed answer raises SimpegError naming the field."""
        path = EMPLOYEE_PATH.format(nip=quote(nip, safe=""))  # a NIP is no path to escape from
        response = self._call("GET", path, not_found_ok=True)
        if response.status_code == 404:
            return None
        body = self._json(response, f"GET {path}")
        row = body.get("data") if isinstance(body, dict) else None
        fetched = _parse_all("employee", "nip", [row], _EmployeeWire, _employee)
        if fetched.skipped:
            raise SimpegError(f"SIMPEG sent a malformed employee {nip}: "
                              f"{fetched.skipped[0].problem}")
        return fetched[0]

    def leave(self, first_day: date, last_day: date) -> Fetched[SimpegLeave]:
        """Leave and permits overlapping ``first_day..last_day`` (inclusive), cancelled ones
        included (``cancelled``) so a late cancellation reaches the rules."""
        if last_day < first_day:
            raise ValueError(f"last_day {last_day} is before first_day {first_day}")
        params = {"dari": first_day.isoformat(), "sampai": last_day.isoformat()}
        fetched = _parse_all("leave", "id", self._pages(LEAVE_PATH, params), _LeaveWire, _leave)
        unique = {v.id: v for v in fetched}
        return Fetched(unique.values(), fetched.skipped)

    # ------------------------------------------------------------------ writing

    def upload_recaps(self, period: str, records: Sequence[EmployeeRecap],
                      batch_size: int = 500, *, attempt: str = "") -> UploadReport:
        """Upload one period's recaps in batches (sorted by NIP, so the same recaps always
        make the same batches and the same Idempotency-Keys). A batch SIMPEG already answered
        is replayed by SIMPEG; its accepted records then count as duplicates, since this call
        changed nothing. A different `attempt` (a deliberate resend) makes new keys, so SIMPEG
        processes the batches afresh instead of replaying its earlier answers. Raises
        SimpegUnavailable after the retries; batches sent before stay stored, and calling again
        is safe."""
        if not PERIOD_RE.match(period):
            raise ValueError(f"period {period!r} is not YYYY-MM")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be 1..{MAX_BATCH}")
        wrong = sorted({r.period for r in records} - {period})
        if wrong:
            raise ValueError(f"recaps of period {', '.join(wrong)} in an upload for {period}")
        nips = [r.nip for r in records]
        if len(set(nips)) != len(nips):
            raise ValueError("more than one recap for the same NIP in one period")
        rows = sorted((recap_record(r) for r in records), key=lambda rec: rec["nip"])
        accepted = duplicate = revised = batches = 0
        rejected: list[tuple[str, str]] = []
        for start in range(0, len(rows), batch_size):
            batch = rows[start:start + batch_size]
            results, replayed = self._upload_batch(period, batch, attempt)
            batches += 1
            for rec in batch:
                result = results.get(rec["nip"])
                if result is None:
                    rejected.append((rec["nip"], "SIMPEG's answer has no result for it"))
                elif result["status"] == "rejected":
                    rejected.append((rec["nip"], result.get("reason") or "no reason given"))
                elif result["status"] == "duplicate" or replayed:
                    duplicate += 1
                else:
                    accepted += 1
                    revised += result["revision"] > 1
        for nip, reason in rejected:
            log.warning("SIMPEG rejected the %s recap of %s: %s", period, nip, reason)
        return UploadReport(accepted, duplicate, tuple(rejected), revised, batches)

    def _upload_batch(self, period: str, batch: list[dict[str, Any]], attempt: str = ""
                      ) -> tuple[dict[str, dict[str, Any]], bool]:
        key = idempotency_key(period, batch, attempt)
        body = json.dumps({"periode": period, "records": batch}, separators=(",", ":"),
                          ensure_ascii=False).encode()  # the same bytes on every retry
        response = self._call("POST", RECAP_PATH, content=body,
                              headers={"Idempotency-Key": key,
                                       "Content-Type": "application/json"})
        what = f"POST {RECAP_PATH}"
        answer = self._json(response, what)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list):
            raise SimpegError(f"SIMPEG's answer to {what} has no results list")
        by_nip: dict[str, dict[str, Any]] = {}
        for item in results:
            ok = (isinstance(item, dict) and isinstance(item.get("nip"), str)
                  and item.get("status") in ("accepted", "duplicate", "rejected")
                  and isinstance(item.get("revision"), int))
            if not ok:
                raise SimpegError(f"SIMPEG's answer to {what} has a malformed result: "
                                  f"{str(item)[:200]}")
            by_nip[item["nip"]] = item
        replayed = response.headers.get("Idempotent-Replayed", "").lower() == "true"
        return by_nip, replayed

    # ------------------------------------------------------------------ HTTP

    def _pages(self, path: str, params: dict[str, str]) -> Iterator[Any]:
        page = 1
        while True:
            what = f"GET {path} page {page}"
            response = self._call("GET", path, params={**params, "page": str(page),
                                                        "per_page": str(self.per_page)})
            body = self._json(response, what)
            data = body.get("data") if isinstance(body, dict) else None
            total = body.get("total") if isinstance(body, dict) else None
            if not isinstance(data, list) or not isinstance(total, int):
                raise SimpegError(f"SIMPEG's answer to {what} is no page "
                                  "({\"data\": [...], \"total\": n})")
            yield from data
            if not data or page * self.per_page >= total:
                return
            page += 1

    def _json(self, response: httpx.Response, what: str) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise SimpegError(f"SIMPEG's answer to {what} is not JSON",
                              status=response.status_code) from exc

    def _backoff(self, attempt: int) -> float:
        # Exponential, without jitter: one control room talks to one SIMPEG, so there is no
        # herd of clients to spread out, and deterministic waits keep the tests exact.
        return min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1))

    def _with_retries(self, what: str, send: Callable[[], httpx.Response]) -> httpx.Response:
        problem = ""
        cause: Exception | None = None
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self._backoff(attempt))
            try:
                response = send()
            except httpx.TimeoutException as exc:
                problem, cause = f"no answer within {self.timeout_s:g} s", exc
            except httpx.TransportError as exc:
                problem, cause = f"connection failed ({type(exc).__name__}: {exc})", exc
            else:
                if response.status_code < 500:
                    if attempt:
                        log.info("SIMPEG answered %s after %d retries", what, attempt)
                    return response
                problem, cause = f"HTTP {response.status_code}{_reason_suffix(response)}", None
            if attempt == 0 and self.retries:
                log.warning("SIMPEG %s failed (%s); retrying up to %d times", what, problem,
                            self.retries)
        raise SimpegUnavailable(
            f"SIMPEG at {self.base_url} is unavailable: {what} failed {self.retries + 1} "
            f"times, last: {problem}") from cause

    def _bearer(self, renew: bool) -> str:
        if renew or self._token is None or time.monotonic() >= self._token_renew_at_s:
            self._token = None
            self._fetch_token()
        assert self._token is not None
        return self._token

    def _fetch_token(self) -> None:
        form = {"grant_type": "client_credentials", "client_id": self.client_id,
                "client_secret": self._secret.get_secret_value()}
        what = f"POST {TOKEN_PATH}"
        response = self._with_retries(what, lambda: self._http.post(TOKEN_PATH, data=form))
        if response.status_code in (400, 401):
            reason = _reason(response)
            raise SimpegAuthError(f"SIMPEG refused the client credentials of {self.client_id!r}:"
                                  f" {reason}", status=response.status_code, reason=reason)
        if response.status_code != 200:
            raise SimpegError(f"SIMPEG answered {what} with HTTP {response.status_code}"
                              f"{_reason_suffix(response)}", status=response.status_code,
                              reason=_reason(response))
        body = self._json(response, what)
        token = body.get("access_token") if isinstance(body, dict) else None
        kind = body.get("token_type") if isinstance(body, dict) else None
        lifetime = body.get("expires_in", 3600) if isinstance(body, dict) else None
        if (not isinstance(token, str) or not token or not isinstance(kind, str)
                or kind.lower() != "bearer" or not isinstance(lifetime, int | float)):
            raise SimpegError(f"SIMPEG's answer to {what} is no bearer token "
                              "({access_token, token_type: Bearer, expires_in})")
        margin = min(TOKEN_MARGIN_S, lifetime / 10)
        self._token = token
        self._token_renew_at_s = time.monotonic() + lifetime - margin

    def _call(self, method: str, path: str, *, not_found_ok: bool = False,
              headers: dict[str, str] | None = None, **kwargs: Any) -> httpx.Response:
        """One API request with a bearer token: retried on 5xx and transport errors, and on a
        401 sent once more with a new token (it may have expired mid-sync)."""
        what = f"{method} {path}"
        for renew in (False, True):
            auth = {"Authorization": f"Bearer {self._bearer(renew)}", **(headers or {})}
            response = self._with_retries(
                what, lambda auth=auth: self._http.request(method, path, headers=auth, **kwargs))
            if response.status_code != 401:
                break
            log.info("SIMPEG refused the token for %s (%s); renewing it", what, _reason(response))
        else:
            raise SimpegAuthError(f"SIMPEG refused a fresh token for {what}: {_reason(response)}",
                                  status=401, reason=_reason(response))
        if response.status_code == 404 and not_found_ok:
            return response
        if response.status_code >= 400:
            reason = _reason(response)
            raise SimpegError(f"SIMPEG refused {what}: HTTP {response.status_code}: {reason}",
                              status=response.status_code, reason=reason)
        return response


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200] or response.reason_phrase
    if isinstance(body, dict):
        parts = [str(body[k]) for k in ("error", "detail") if body.get(k)]
        if parts:
            return ": ".join(parts)
    return str(body)[:200]


def _reason_suffix(response: httpx.Response) -> str:
    reason = _reason(response)
    return f" ({reason})" if reason else ""
