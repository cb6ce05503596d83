"""An emulated SIMPEG (the regional HR system): a real HTTP server holding organisation units,
civil servants, leave, and the monthly attendance recaps the control room uploads.

Owns the emulator (``SimpegServer``), its state (``SimpegWorld``), a sample world generator
and faults on demand. It must not import the control room, the edge or the CLI: the control
room's client is tested against it over real TCP, unmodified.

The API (ours, named after BKN SIASN where SIASN has an equivalent; SIASN has no attendance
endpoint, so the recap upload is ours). JSON everywhere; dates ``YYYY-MM-DD``; date-times ISO
8601 with an offset.

``POST /oauth/token`` — form ``grant_type=client_credentials&client_id=…&client_secret=…``
(or HTTP Basic) → ``{"access_token", "token_type": "Bearer", "expires_in"}``; wrong
credentials → 401 ``{"error": "invalid_client"}``. Every other call needs
``Authorization: Bearer <token>``; an unknown or expired token → 401 ``{"error":
"invalid_token"}``.

Paged lists take ``page`` (from 1) and ``per_page`` (1..1000, default 100) and answer
``{"data": [...], "page", "per_page", "total"}``; a bad parameter → 400 ``{"error":
"invalid_request", "detail"}``.

- ``GET /api/v1/unor`` — units ``{"id", "nama", "induk_id" (parent or null), "skpd_id"}``;
  an SKPD is a unit whose ``skpd_id`` is its own ``id``.
- ``GET /api/v1/pns?updated_since=ISO`` — employees ``{"nip", "nama", "unor_id", "jabatan",
  "kelompok_jadwal" ("reguler" | "shift"), "id_mesin": [{"sn", "user_id"}], "aktif",
  "updated_at"}``, ordered by NIP; ``id_mesin`` maps attendance machine user ids to the NIP
  (``sn`` "" means any machine; old machines hold short numeric ids bound to their serial).
- ``GET /api/v1/pns/data-utama/{nip}`` → ``{"data": employee}``; unknown NIP → 404.
- ``GET /api/v1/cuti?dari=YYYY-MM-DD&sampai=YYYY-MM-DD`` — leave and permits overlapping the
  range, cancelled ones included: ``{"id", "nip", "jenis" (CT, CS, CM, CAP, CB, CBS, CLTN, DL,
  TB, IT, IPC), "mulai", "selesai" (inclusive), "nomor_surat", "status" ("disetujui" |
  "dibatalkan"), "updated_at"}``.
- ``POST /api/v1/rekap-kehadiran`` with header ``Idempotency-Key`` (required) and body
  ``{"periode": "2026-11", "records": [recap record, …]}`` (at most 1000) →
  ``{"periode", "results": [{"nip", "status": "accepted" | "duplicate" | "rejected",
  "reason" (when rejected), "revision"}]}``. SIMPEG keeps one record per (periode, nip): an
  identical record again (same SHA-256 of its canonical JSON) is ``duplicate`` and keeps its
  revision; a changed one (recomputed after a late leave) is ``accepted`` as the next
  revision. Records are rejected, with a reason, for an unknown NIP, an inactive employee, a
  malformed field (named in the reason), a period in the future, or a NIP SIMPEG refuses. The
  same key with the same body replays the stored answer (header ``Idempotent-Replayed: true``)
  without processing it again; the same key with another body → 422
  ``{"error": "idempotency_key_reused"}``. A malformed body → 422.

Recap record (all fields required, no others)::

    {"nip": "198503122010011001",       # 18 digits
     "periode": "2026-11",              # the upload's period
     "hari_kerja": 21,                  # scheduled working days in the month
     "hadir": 19,                       # days present (<= hari_kerja)
     "tl": [2, 1, 0, 0],                # days late in brackets TL1..TL4
     "psw": [1, 0, 0, 0],               # days left early in brackets PSW1..PSW4
     "absen": {"TK": 1, "CT": 1},       # unexcused absence (TK) and leave/duty codes -> days
     "potongan_persen": 4.5,            # TPP cut after the monthly cap, 0..100
     "potongan_sebelum_batas_persen": 4.5,  # the cut before the cap (>= potongan_persen)
     "versi_aturan": "kota-demo@2026.1",    # rule file that produced it
     "rincian": [{"tanggal": "2026-11-03", "kode": "TL2", "persen": 1.0,
                  "keterangan": "Terlambat 35 menit (masuk 08:05:12, jadwal 07:30)"}]}

Faults on demand (``Faults``, changed live with ``SimpegServer.set_faults``): a burst of
errors (``fail_next``) or a fraction of them (``error_rate``), slowness (``delay_s``),
dropped connections (``drop_next``), short-lived tokens (``token_lifetime_s``,
``token_max_uses``, ``revoke_tokens()``), NIPs whose recaps are refused (``reject_nips``),
a 500 after an upload was stored (``fail_after_store``), and malformed records in the answers
(``corrupt_employees``, ``corrupt_leave``; ``MISSING`` removes a field).

Start it from Python::

    from simulators.simpeg import SimpegServer, sample_world
    with SimpegServer(sample_world(employees=200, seed=1), client_id="kota",
                      client_secret="s3cret") as server:
        print(server.url)   # http://127.0.0.1:<free port>
"""

from simulators.simpeg.recap import RecapRecord, content_hash, record_problem
from simulators.simpeg.sample import SKPDS, sample_world
from simulators.simpeg.server import (
    FAULT_NAMES,
    MISSING,
    Faults,
    SimpegServer,
    SimpegServerError,
)
from simulators.simpeg.world import (
    LEAVE_KINDS,
    Employee,
    Leave,
    MachineUserId,
    SimpegWorld,
    StoredRecap,
    Unit,
    nip_problem,
)

__all__ = [
    "FAULT_NAMES", "LEAVE_KINDS", "MISSING", "SKPDS", "Employee", "Faults", "Leave",
    "MachineUserId", "RecapRecord", "SimpegServer", "SimpegServerError", "SimpegWorld",
    "StoredRecap", "Unit", "content_hash", "nip_problem", "record_problem", "sample_world",
]
