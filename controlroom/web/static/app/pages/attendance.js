// The BKPSDM clerk's attendance page: machines and today's presence per SKPD, the SIMPEG sync,
// the monthly recap per SKPD and per employee with the file downloads, one employee's month
// with every cut explained, leave entry and revocation, recompute. Routes:
//   #/attendance                 this month
//   #/attendance/2026-11         a month
//   #/attendance/2026-11/<NIP>   one employee's month, day by day
// Everything shown comes from the API; changes show the server's answer or its error.
import {
  api, cityDate, clear, confirmDialog, errorText, every, fmtDateTime, fmtNumber, fmtTime, h,
  hasRole, lang, t, toast, useCss,
} from "../core.js";

const CLERK = ["bkpsdm", "admin"];
const REFRESH_MS = 30_000;
const MONTH_RE = /^\d{4}-(0[1-9]|1[0-2])$/;
const NIP_RE = /^\d{18}$/;

const strings = {
  id: {
    "attendance.nav": "Kehadiran",
    "attendance.title": "Kehadiran ASN",
    "attendance.today": "Hari ini, {day}",
    "attendance.updated": "diperbarui {time}",
    "attendance.machines": "Mesin absensi",
    "attendance.machine": "Mesin",
    "attendance.online": "daring",
    "attendance.offline": "luring",
    "attendance.last_contact": "Kontak terakhir",
    "attendance.punches_today": "Absen hari ini",
    "attendance.last_punch": "Absen terakhir",
    "attendance.alarms": "Alarm terbuka",
    "attendance.no_machine": "Tidak ada mesin terdaftar untuk SKPD ini.",
    "attendance.presence": "Kehadiran hari ini",
    "attendance.employees_n": "{n} pegawai",
    "attendance.scheduled": "Wajib masuk",
    "attendance.present": "Hadir",
    "attendance.on_time": "Tepat waktu",
    "attendance.late": "Terlambat (TL)",
    "attendance.no_punch": "Belum/tidak absen",
    "attendance.no_punch_hint": "Belum ada absen yang dihitung; menjadi TK (tanpa keterangan) bila hari berakhir tanpa absen.",
    "attendance.on_leave": "Cuti / DL / izin",
    "attendance.off": "Libur",
    "attendance.show_staff": "Lihat pegawai",
    "attendance.hide_staff": "Tutup daftar",
    "attendance.state.present": "Hadir",
    "attendance.state.no_punch": "Belum/tidak absen",
    "attendance.state.leave": "Cuti/DL",
    "attendance.state.off": "Libur",
    "attendance.today_note": "Dinilai mesin aturan dari absen yang sudah masuk; hari ini baru final setelah lewat tengah malam.",
    "attendance.simpeg": "Sinkronisasi SIMPEG",
    "attendance.simpeg_off": "SIMPEG belum dikonfigurasi ([controlroom.attendance.simpeg]).",
    "attendance.simpeg_state": "Status SIMPEG",
    "attendance.simpeg_ok": "terhubung",
    "attendance.simpeg_down": "tidak menjawab",
    "attendance.last_pull": "Tarik data terakhir",
    "attendance.last_round": "Putaran terakhir",
    "attendance.interval": "otomatis tiap {min} menit",
    "attendance.skipped": "Data dilewati",
    "attendance.uploads": "Kiriman rekap ke SIMPEG",
    "attendance.period": "Periode",
    "attendance.sent": "Dikirim",
    "attendance.accepted": "Diterima",
    "attendance.duplicate": "Sudah ada",
    "attendance.rejected": "Ditolak",
    "attendance.rejections": "Alasan penolakan",
    "attendance.not_sent": "Belum dikirim (bulan belum berakhir)",
    "attendance.sync_now": "Sinkron sekarang",
    "attendance.sync_title": "Jalankan sinkronisasi SIMPEG sekarang?",
    "attendance.sync_text": "Menarik unit, pegawai, dan cuti dari SIMPEG, menghitung ulang bulan berjalan, dan mengirim rekap bulan yang sudah berakhir. Tindakan ini dicatat atas nama Anda.",
    "attendance.sync_done": "Sinkronisasi selesai",
    "attendance.sync_error": "SIMPEG gagal: {error}",
    "attendance.reason": "Alasan",
    "attendance.recap": "Rekap bulanan",
    "attendance.month": "Bulan",
    "attendance.skpd": "SKPD",
    "attendance.all_skpd": "Semua SKPD",
    "attendance.download_xlsx": "Unduh XLSX",
    "attendance.download_csv": "Unduh CSV",
    "attendance.recompute": "Hitung ulang bulan",
    "attendance.recompute_title": "Hitung ulang {month}?",
    "attendance.recompute_text": "Setiap hari bulan ini dinilai ulang dari absen mentah, cuti, dan aturan; setiap perubahan dicatat.",
    "attendance.recompute_done": "Dihitung ulang: {employees} pegawai, {changed} hari berubah, {new} hari baru",
    "attendance.per_skpd": "Per SKPD",
    "attendance.per_employee": "Per pegawai",
    "attendance.employees": "Pegawai",
    "attendance.working_days": "Hari kerja",
    "attendance.present_days": "Hadir",
    "attendance.absences": "TK/cuti/DL",
    "attendance.cut": "Potongan TPP",
    "attendance.cut_mean": "Rata-rata potongan",
    "attendance.with_cut": "Pegawai terpotong",
    "attendance.name": "Nama",
    "attendance.nip": "NIP",
    "attendance.filter": "Cari nama atau NIP",
    "attendance.sort": "Urutkan",
    "attendance.sort.nip": "NIP",
    "attendance.sort.cut": "Potongan terbesar",
    "attendance.sort.name": "Nama",
    "attendance.no_recap": "Belum ada rekap untuk bulan ini (belum dihitung).",
    "attendance.rules": "Aturan potongan yang berlaku",
    "attendance.rule_tl": "Terlambat (TL)",
    "attendance.rule_psw": "Pulang sebelum waktunya (PSW)",
    "attendance.rule_from": "mulai menit ke-{min}",
    "attendance.rule_missing": "tanpa absen: {code}",
    "attendance.rule_tk": "Tanpa keterangan (TK): {pct} per hari",
    "attendance.rule_cap": "Batas potongan sebulan: {pct}",
    "attendance.rule_grace": "Toleransi: {min} menit",
    "attendance.back": "← Kembali ke rekap {month}",
    "attendance.detail": "Rincian harian",
    "attendance.day": "Tanggal",
    "attendance.status": "Status",
    "attendance.schedule": "Jadwal",
    "attendance.in": "Masuk",
    "attendance.out": "Pulang",
    "attendance.late_min": "Telat (mnt)",
    "attendance.early_min": "Cepat (mnt)",
    "attendance.why": "Penjelasan",
    "attendance.flags": "Perlu dicek",
    "attendance.cut_lines": "Dasar potongan",
    "attendance.code": "Kode",
    "attendance.cut_total": "Jumlah potongan {total} (setelah batas: {capped})",
    "attendance.no_cut": "Tidak ada potongan bulan ini.",
    "attendance.status.H": "Hadir",
    "attendance.status.TK": "Tanpa keterangan",
    "attendance.status.L": "Libur",
    "attendance.status.-": "Belum dinilai",
    "attendance.leave": "Cuti, DL, dan izin",
    "attendance.leave_add": "Catat cuti/DL",
    "attendance.leave_title": "Catat cuti, dinas luar, atau izin",
    "attendance.leave_kind": "Jenis",
    "attendance.leave_from": "Dari tanggal",
    "attendance.leave_to": "Sampai tanggal",
    "attendance.leave_doc": "Nomor surat/SK",
    "attendance.leave_confirm_title": "Simpan {kind} untuk {nip}, {from} s.d. {to}?",
    "attendance.leave_confirm_text": "Hari-hari itu dihitung ulang; perubahan dicatat atas nama Anda.",
    "attendance.leave_saved": "Cuti #{id} tersimpan; {changed} hari berubah",
    "attendance.leave_bad_nip": "NIP harus 18 angka",
    "attendance.leave_bad_dates": "Tanggal akhir sebelum tanggal awal",
    "attendance.leave_none": "Tidak ada cuti/DL bulan ini.",
    "attendance.leave_source": "Sumber",
    "attendance.leave_by": "Dicatat oleh",
    "attendance.revoke": "Cabut",
    "attendance.revoke_title": "Cabut cuti #{id} ({kind}, {nip})?",
    "attendance.revoke_text": "Hari-hari cuti ini dinilai ulang dari absen. Tuliskan alasannya.",
    "attendance.revoked": "Cuti #{id} dicabut; {changed} hari berubah",
    "attendance.error": "Gagal: {error}",
    "attendance.saving": "Menyimpan…",
    "attendance.flag.double_punch": "absen ganda",
    "attendance.flag.other_office": "mesin kantor lain",
    "attendance.flag.outside_window": "absen di luar jam",
    "attendance.flag.leave_with_punch": "cuti tapi ada absen",
    "attendance.flag.no_in": "tanpa absen masuk",
    "attendance.flag.no_out": "tanpa absen pulang",
    "attendance.flag.excused_late": "izin terlambat",
    "attendance.flag.excused_early": "izin pulang cepat",
    "attendance.flag.other_office_ignored": "mesin kantor lain (tidak dihitung)",
    "attendance.flag.unknown_group": "kelompok jadwal tak dikenal",
  },
  en: {
    "attendance.nav": "Attendance",
    "attendance.title": "Civil servants' attendance",
    "attendance.today": "Today, {day}",
    "attendance.updated": "updated {time}",
    "attendance.machines": "Attendance machines",
    "attendance.machine": "Machine",
    "attendance.online": "online",
    "attendance.offline": "offline",
    "attendance.last_contact": "Last contact",
    "attendance.punches_today": "Punches today",
    "attendance.last_punch": "Last punch",
    "attendance.alarms": "Open alarms",
    "attendance.no_machine": "No machine registered for this SKPD.",
    "attendance.presence": "Presence today",
    "attendance.employees_n": "{n} employees",
    "attendance.scheduled": "Due at work",
    "attendance.present": "Present",
    "attendance.on_time": "On time",
    "attendance.late": "Late (TL)",
    "attendance.no_punch": "No punch (yet)",
    "attendance.no_punch_hint": "No counted punch yet; becomes TK (absent without leave) if the day ends without one.",
    "attendance.on_leave": "Leave / duty",
    "attendance.off": "Day off",
    "attendance.show_staff": "Show staff",
    "attendance.hide_staff": "Hide list",
    "attendance.state.present": "Present",
    "attendance.state.no_punch": "No punch (yet)",
    "attendance.state.leave": "Leave/duty",
    "attendance.state.off": "Day off",
    "attendance.today_note": "Judged by the rules engine from the punches received so far; today is final only after midnight.",
    "attendance.simpeg": "SIMPEG sync",
    "attendance.simpeg_off": "No SIMPEG configured ([controlroom.attendance.simpeg]).",
    "attendance.simpeg_state": "SIMPEG state",
    "attendance.simpeg_ok": "answering",
    "attendance.simpeg_down": "not answering",
    "attendance.last_pull": "Last pull",
    "attendance.last_round": "Last round",
    "attendance.interval": "automatic every {min} min",
    "attendance.skipped": "Records skipped",
    "attendance.uploads": "Recaps sent to SIMPEG",
    "attendance.period": "Period",
    "attendance.sent": "Sent",
    "attendance.accepted": "Accepted",
    "attendance.duplicate": "Already held",
    "attendance.rejected": "Rejected",
    "attendance.rejections": "Reasons for rejection",
    "attendance.not_sent": "Not sent yet (month not over)",
    "attendance.sync_now": "Sync now",
    "attendance.sync_title": "Run the SIMPEG sync now?",
    "attendance.sync_text": "Pulls units, employees and leave from SIMPEG, recomputes the current month and sends the recaps of months that are over. Recorded under your name.",
    "attendance.sync_done": "Sync finished",
    "attendance.sync_error": "SIMPEG failed: {error}",
    "attendance.reason": "Reason",
    "attendance.recap": "Monthly recap",
    "attendance.month": "Month",
    "attendance.skpd": "SKPD",
    "attendance.all_skpd": "All SKPDs",
    "attendance.download_xlsx": "Download XLSX",
    "attendance.download_csv": "Download CSV",
    "attendance.recompute": "Recompute month",
    "attendance.recompute_title": "Recompute {month}?",
    "attendance.recompute_text": "Every day of the month is judged again from raw punches, leave and the rules; every change is recorded.",
    "attendance.recompute_done": "Recomputed: {employees} employees, {changed} days changed, {new} new days",
    "attendance.per_skpd": "Per SKPD",
    "attendance.per_employee": "Per employee",
    "attendance.employees": "Employees",
    "attendance.working_days": "Working days",
    "attendance.present_days": "Present",
    "attendance.absences": "TK/leave/duty",
    "attendance.cut": "TPP cut",
    "attendance.cut_mean": "Mean cut",
    "attendance.with_cut": "Employees with a cut",
    "attendance.name": "Name",
    "attendance.nip": "NIP",
    "attendance.filter": "Search name or NIP",
    "attendance.sort": "Sort by",
    "attendance.sort.nip": "NIP",
    "attendance.sort.cut": "Largest cut",
    "attendance.sort.name": "Name",
    "attendance.no_recap": "No recap for this month yet (not computed).",
    "attendance.rules": "Cut rules in force",
    "attendance.rule_tl": "Late (TL)",
    "attendance.rule_psw": "Left early (PSW)",
    "attendance.rule_from": "from minute {min}",
    "attendance.rule_missing": "no punch: {code}",
    "attendance.rule_tk": "Absent without leave (TK): {pct} a day",
    "attendance.rule_cap": "Monthly cap: {pct}",
    "attendance.rule_grace": "Grace: {min} min",
    "attendance.back": "← Back to the {month} recap",
    "attendance.detail": "Day by day",
    "attendance.day": "Date",
    "attendance.status": "Status",
    "attendance.schedule": "Schedule",
    "attendance.in": "In",
    "attendance.out": "Out",
    "attendance.late_min": "Late (min)",
    "attendance.early_min": "Early (min)",
    "attendance.why": "Explanation",
    "attendance.flags": "To check",
    "attendance.cut_lines": "What the cut is made of",
    "attendance.code": "Code",
    "attendance.cut_total": "Total cut {total} (after the cap: {capped})",
    "attendance.no_cut": "No cut this month.",
    "attendance.status.H": "Present",
    "attendance.status.TK": "Absent without leave",
    "attendance.status.L": "Day off",
    "attendance.status.-": "Not judged yet",
    "attendance.leave": "Leave, duty and permits",
    "attendance.leave_add": "Enter leave/duty",
    "attendance.leave_title": "Enter leave, official travel or a permit",
    "attendance.leave_kind": "Kind",
    "attendance.leave_from": "From",
    "attendance.leave_to": "To",
    "attendance.leave_doc": "Letter/decree number",
    "attendance.leave_confirm_title": "Save {kind} for {nip}, {from} to {to}?",
    "attendance.leave_confirm_text": "Those days are recomputed; the changes are recorded under your name.",
    "attendance.leave_saved": "Leave #{id} saved; {changed} days changed",
    "attendance.leave_bad_nip": "The NIP has 18 digits",
    "attendance.leave_bad_dates": "The last day is before the first",
    "attendance.leave_none": "No leave or duty this month.",
    "attendance.leave_source": "Source",
    "attendance.leave_by": "Entered by",
    "attendance.revoke": "Revoke",
    "attendance.revoke_title": "Revoke leave #{id} ({kind}, {nip})?",
    "attendance.revoke_text": "Its days are judged again from the punches. Give the reason.",
    "attendance.revoked": "Leave #{id} revoked; {changed} days changed",
    "attendance.error": "Failed: {error}",
    "attendance.saving": "Saving…",
    "attendance.flag.double_punch": "double punch",
    "attendance.flag.other_office": "another office's machine",
    "attendance.flag.outside_window": "punch outside hours",
    "attendance.flag.leave_with_punch": "on leave yet punched",
    "attendance.flag.no_in": "no in-punch",
    "attendance.flag.no_out": "no out-punch",
    "attendance.flag.excused_late": "permit to come late",
    "attendance.flag.excused_early": "permit to leave early",
    "attendance.flag.other_office_ignored": "another office's machine (not counted)",
    "attendance.flag.unknown_group": "unknown schedule group",
  },
};

// ------------------------------------------------------------------ small formatters

const pct = (v) => `${fmtNumber(v, 2)} %`;

/** "2026-11-02" → "Sen, 2 Nov 2026" (a calendar date: no zone shift). */
function fmtDay(iso) {
  if (!iso) return "—";
  const d = new Date(`${iso.slice(0, 10)}T00:00:00Z`);
  return new Intl.DateTimeFormat(lang() === "id" ? "id-ID" : "en-GB", { timeZone: "UTC",
    weekday: "short", day: "numeric", month: "short", year: "numeric" }).format(d);
}

function fmtMonth(month) {
  const d = new Date(`${month}-01T00:00:00Z`);
  return new Intl.DateTimeFormat(lang() === "id" ? "id-ID" : "en-GB", { timeZone: "UTC",
    month: "long", year: "numeric" }).format(d);
}

/** The machine's wall time of a stored "2026-11-02T07:45:12" (no zone: as the clock showed). */
const wall = (v) => (v ? String(v).slice(11, 19) : "—");

function leaveName(rules, code) {
  const kind = (rules?.leave_types || []).find((k) => k.code === code);
  if (!kind) return code;
  return `${code} — ${lang() === "id" ? kind.name_id : kind.name_en}`;
}

function statusText(rules, code) {
  const key = `attendance.status.${code}`;
  const text = t(key);
  return text === key ? leaveName(rules, code) : `${code} — ${text}`;
}

function absencesText(absences) {
  const parts = Object.entries(absences || {}).map(([k, v]) => `${k} ${v}`);
  return parts.length ? parts.join(", ") : "—";
}

function failBox(el, err) {
  clear(el).append(h("p", { class: "error", role: "alert" }, t("attendance.error",
    { error: errorText(err) })));
}

// ------------------------------------------------------------------ the page

function mount(el, params) {
  useCss("/ui/pages/attendance.css");
  const thisMonth = cityDate().slice(0, 7);
  const month = MONTH_RE.test(params[0] || "") ? params[0] : thisMonth;
  const nip = NIP_RE.test(params[1] || "") ? params[1] : null;
  const state = { rules: null, month };
  const stops = [];
  el.append(h("h1", {}, t("attendance.title")));
  if (nip) {
    employeeView(el, state, nip);
  } else {
    overview(el, state, stops);
  }
  return () => stops.forEach((stop) => stop());
}

async function loadRules(state) {
  if (!state.rules) state.rules = await api(`/api/attendance/rules?month=${state.month}`);
  return state.rules;
}

// ------------------------------------------------------------------ overview

function overview(el, state, stops) {
  const status = h("p", { class: "muted", id: "att-status", role: "status" });
  const todayBox = h("div", { id: "att-today", class: "att-skpds" }, t("core.loading"));
  const todayHead = h("h2", { id: "att-today-head" }, t("attendance.presence"));
  const simpegBox = h("div", { id: "att-simpeg", class: "panel" }, t("core.loading"));
  const simpegStatus = h("p", { class: "error", role: "alert" });
  const recapBox = h("div", { id: "att-recap" });
  const leaveBox = h("div", { id: "att-leave", class: "panel" });
  el.append(
    h("div", { class: "att-top" },
      h("section", { class: "att-today" }, todayHead, h("p", { class: "muted" },
        t("attendance.today_note")), status, todayBox),
      h("section", { class: "att-side" }, h("h2", {}, t("attendance.simpeg")), simpegStatus,
        simpegBox)),
    h("section", {}, h("h2", {}, t("attendance.recap")), recapBox),
    h("section", {}, h("h2", {}, t("attendance.leave")), leaveBox));

  const open = new Set();  // SKPDs whose staff list is open
  const refreshToday = async () => {
    const [today, machines] = await Promise.all([api("/api/attendance/today"),
      api("/api/attendance/machines")]);
    const staff = {};
    await Promise.all([...open].map(async (code) => {
      staff[code] = (await api(`/api/attendance/today?skpd=${encodeURIComponent(code)}`))
        .employees;
    }));
    todayHead.textContent = `${t("attendance.presence")} — ${fmtDay(today.day)}`;
    renderToday(todayBox, today, machines, open, staff, () => refreshToday().catch((err) => {
      status.textContent = t("attendance.error", { error: errorText(err) });
    }));
    status.textContent = t("attendance.updated", { time: fmtTime(today.computed_at) });
  };
  stops.push(every(REFRESH_MS, refreshToday, status));
  stops.push(every(REFRESH_MS, async () => {
    renderSimpeg(simpegBox, await api("/api/attendance/simpeg"), state);
  }, simpegStatus));

  renderRecap(recapBox, state);
  renderLeave(leaveBox, state);
}

function renderToday(box, today, machines, open, staff, reload) {
  clear(box);
  const bySkpd = new Map(today.skpds.map((s) => [s.skpd, { skpd: s, machines: [] }]));
  const other = [];
  const info = new Map(today.machines.map((m) => [m.device_sn, m]));
  for (const m of machines) {
    const joined = { ...m, ...(info.get(m.device_sn) || {}) };
    const slot = bySkpd.get(joined.skpd);
    if (slot) slot.machines.push(joined); else other.push(joined);
  }
  for (const { skpd, machines: list } of bySkpd.values()) {
    box.append(skpdCard(skpd, list, open, staff[skpd.skpd], reload));
  }
  if (other.length) {
    box.append(h("div", { class: "panel att-card", "data-skpd": "" },
      h("h3", {}, t("attendance.machines")), machineTable(other)));
  }
}

/** Today's contact as a time, an older one with its date. */
function fmtContact(value) {
  return value && cityDate(value) === cityDate() ? fmtTime(value) : fmtDateTime(value);
}

function machineTable(list) {
  if (!list.length) return h("p", { class: "muted" }, t("attendance.no_machine"));
  return h("ul", { class: "att-machines" }, list.map((m) => h("li", { "data-sn": m.device_sn },
    h("div", { class: "row" }, h("strong", {}, m.device_sn),
      h("span", { class: `badge ${m.online ? "ok" : "bad"}`, "data-online": String(m.online) },
        m.online ? t("attendance.online") : t("attendance.offline")),
      h("span", { class: "muted" }, [m.name, m.office].filter(Boolean).join(" · "))),
    h("div", { class: "att-mline" },
      h("span", {}, `${t("attendance.last_contact")}: `, h("b", {}, fmtContact(m.last_seen))),
      h("span", { title: `${t("attendance.last_punch")}: ${fmtContact(m.last_punch)}` },
        `${t("attendance.punches_today")}: `, h("b", { "data-punches": m.punches_today ?? 0 },
          fmtNumber(m.punches_today ?? 0))),
      h("span", {}, `${t("attendance.alarms")}: `, m.open_alarms
        ? h("span", { class: "badge warn", "data-alarms": m.open_alarms }, String(m.open_alarms))
        : h("b", { "data-alarms": 0 }, "0"))))));
}

function skpdCard(s, machines, open, staff, reload) {
  const leave = Object.entries(s.leave);
  const leaveTotal = leave.reduce((a, [, n]) => a + n, 0);
  const stat = (key, value, cls = "", extra = null) => h("div", { class: `att-stat ${cls}`,
    "data-stat": key }, h("span", { class: "att-n" }, fmtNumber(value)),
  h("span", { class: "att-l" }, t(`attendance.${key}`)), extra);
  const isOpen = open.has(s.skpd);
  return h("div", { class: "panel att-card", "data-skpd": s.skpd },
    h("div", { class: "row att-card-head" }, h("h3", {}, s.skpd_name),
      h("span", { class: "muted" }, `${s.skpd} · ${t("attendance.employees_n", { n: s.employees })}`)),
    machineTable(machines),
    h("div", { class: "att-stats" },
      stat("scheduled", s.scheduled),
      stat("present", s.present, "ok"),
      stat("on_time", s.on_time),
      stat("late", s.late, s.late ? "warn" : "", h("span", { class: "muted att-tl" },
        s.late_by_tl.map((n, i) => (n ? `TL${i + 1}: ${n}` : null)).filter(Boolean).join(" · ")
        || "—")),
      h("div", { class: `att-stat ${s.no_punch ? "bad" : ""}`, "data-stat": "no_punch",
        title: t("attendance.no_punch_hint") }, h("span", { class: "att-n" },
        fmtNumber(s.no_punch)), h("span", { class: "att-l" }, t("attendance.no_punch"))),
      stat("on_leave", leaveTotal, "", h("span", { class: "muted att-tl" },
        leave.map(([k, n]) => `${k}: ${n}`).join(" · ") || "—")),
      stat("off", s.off)),
    h("button", { type: "button", class: "secondary", "data-action": "staff",
      onclick: () => { if (isOpen) open.delete(s.skpd); else open.add(s.skpd); reload(); } },
    isOpen ? t("attendance.hide_staff") : t("attendance.show_staff")),
    isOpen && staff ? staffTable(staff) : null);
}

function staffTable(rows) {
  const order = { no_punch: 0, present: 1, leave: 2, off: 3 };
  const sorted = [...rows].sort((a, b) => (order[a.state] - order[b.state]) || (b.tl - a.tl)
    || a.name.localeCompare(b.name));
  return h("div", { class: "att-scroll" }, h("table", { class: "att-staff" },
    h("thead", {}, h("tr", {}, h("th", {}, t("attendance.name")), h("th", {}, t("attendance.status")),
      h("th", {}, t("attendance.schedule")), h("th", {}, t("attendance.in")),
      h("th", {}, t("attendance.out")), h("th", {}, "TL"))),
    h("tbody", {}, sorted.map((p) => h("tr", { "data-nip": p.nip, class: `att-${p.state}` },
      h("td", {}, p.name, h("div", { class: "muted" }, p.nip)),
      h("td", {}, p.state === "leave" ? p.leave : t(`attendance.state.${p.state}`)),
      h("td", {}, p.scheduled_start ? `${p.scheduled_start}–${p.scheduled_end}` : "—"),
      h("td", {}, p.in_time || "—"), h("td", {}, p.out_time || "—"),
      h("td", {}, p.tl ? `TL${p.tl}` : "—"))))));
}

// ------------------------------------------------------------------ SIMPEG

function renderSimpeg(box, s, state) {
  clear(box);
  if (!s.configured) {
    box.append(h("p", { class: "muted", id: "simpeg-off" }, t("attendance.simpeg_off")));
  }
  const round = s.round;
  if (round && round.simpeg) {
    box.append(h("div", { class: "row" }, h("span", {}, t("attendance.simpeg_state")),
      h("span", { class: `badge ${round.simpeg === "ok" ? "ok" : "bad"}`, id: "simpeg-state" },
        round.simpeg === "ok" ? t("attendance.simpeg_ok") : t("attendance.simpeg_down")),
      h("span", { class: "muted" }, t("attendance.interval",
        { min: fmtNumber(round.interval_s / 60) }))));
    if (round.last?.simpeg_error) {
      box.append(h("p", { class: "error" }, t("attendance.sync_error",
        { error: round.last.simpeg_error })));
    }
  }
  const pull = s.last_pull;
  box.append(h("dl", { class: "att-dl" },
    h("dt", {}, t("attendance.last_pull")),
    h("dd", { id: "simpeg-last-pull" }, pull ? [fmtDateTime(pull.at), h("div", { class: "muted" },
      `${pull.actor}: ${pull.detail.summary}`)] : "—"),
    round?.last?.at ? [h("dt", {}, t("attendance.last_round")),
      h("dd", {}, fmtDateTime(round.last.at))] : null));
  const skipped = pull?.detail?.skipped || [];
  if (skipped.length) {
    box.append(h("details", {}, h("summary", {}, `${t("attendance.skipped")}: ${skipped.length}`),
      h("ul", {}, skipped.map(([kind, key, problem]) => h("li", {}, `${kind} ${key}: ${problem}`)))));
  }
  box.append(h("h3", {}, t("attendance.uploads")), h("table", { id: "simpeg-uploads" },
    h("thead", {}, h("tr", {}, h("th", {}, t("attendance.period")),
      h("th", { class: "num" }, t("attendance.sent")),
      h("th", { class: "num" }, t("attendance.accepted")),
      h("th", { class: "num" }, t("attendance.duplicate")),
      h("th", { class: "num" }, t("attendance.rejected")), h("th", {}, ""))),
    h("tbody", {}, s.uploads.map((u) => h("tr", { "data-period": u.period },
      h("td", {}, fmtMonth(u.period)),
      u.records ? [h("td", { class: "num" }, fmtNumber(u.records)),
        h("td", { class: "num" }, fmtNumber(u.accepted)),
        h("td", { class: "num" }, fmtNumber(u.duplicate)),
        h("td", { class: "num" }, u.rejected ? h("span", { class: "badge bad" },
          String(u.rejected)) : "0"),
        h("td", { class: "muted" }, fmtDateTime(u.last_at))]
        : h("td", { colspan: 5, class: "muted" }, t("attendance.not_sent")))))));
  const rejections = s.uploads.flatMap((u) => u.rejections.map((r) => ({ ...r, period: u.period })));
  if (rejections.length) {
    box.append(h("details", { open: true }, h("summary", {}, t("attendance.rejections")),
      h("ul", { id: "simpeg-rejections" }, rejections.map((r) => h("li", {},
        `${r.period} · ${r.nip} ${r.name}: ${r.reason}`)))));
  }
  if (s.configured && hasRole(...CLERK)) {
    const button = h("button", { type: "button", class: "primary", id: "simpeg-sync",
      disabled: round?.running || null }, t("attendance.sync_now"));
    const answer = h("p", { id: "simpeg-answer", role: "status" });
    button.addEventListener("click", async () => {
      const values = await confirmDialog({ title: t("attendance.sync_title"),
        text: t("attendance.sync_text"), fields: [{ name: "reason", label: t("attendance.reason"),
          required: true }] });
      if (!values) return;
      button.disabled = true;
      answer.className = "muted";
      answer.textContent = t("attendance.saving");
      try {
        const out = await api("/api/attendance/simpeg/sync", { method: "POST",
          body: { reason: values.reason } });
        const lines = [out.pulled, ...Object.entries(out).filter(([k]) => k.startsWith("pushed_"))
          .map(([k, v]) => `${k.slice(7)}: ${v}`)].filter(Boolean);
        answer.className = out.simpeg_error ? "error" : "ok-text";
        answer.textContent = out.simpeg_error ? t("attendance.sync_error",
          { error: out.simpeg_error }) : `${t("attendance.sync_done")}: ${lines.join("; ")}`;
        toast(answer.textContent, out.simpeg_error ? "error" : "ok");
        renderSimpeg(box, await api("/api/attendance/simpeg"), state);
        box.querySelector("#simpeg-answer")?.replaceWith(answer);
      } catch (err) {
        answer.className = "error";
        answer.textContent = t("attendance.error", { error: errorText(err) });
        button.disabled = false;
      }
    });
    box.append(h("div", { class: "row att-actions" }, button), answer);
  }
}

// ------------------------------------------------------------------ recap

function exportHref(month, skpd, format) {
  const q = new URLSearchParams({ month, format, lang: lang() });
  if (skpd) q.set("skpd", skpd);
  return `/api/attendance/recap/export?${q}`;
}

async function renderRecap(box, state) {
  const skpdSelect = h("select", { id: "recap-skpd", name: "skpd" },
    h("option", { value: "" }, t("attendance.all_skpd")));
  const monthInput = h("input", { type: "month", id: "recap-month", name: "month",
    value: state.month, max: cityDate().slice(0, 7), required: true });
  const xlsx = h("a", { class: "button", id: "recap-xlsx", download: "" }, t("attendance.download_xlsx"));
  const csv = h("a", { class: "button", id: "recap-csv", download: "" }, t("attendance.download_csv"));
  const filter = h("input", { type: "search", id: "recap-filter", placeholder: t("attendance.filter") });
  const sort = h("select", { id: "recap-sort", name: "sort" }, ["nip", "cut", "name"].map((k) =>
    h("option", { value: k }, t(`attendance.sort.${k}`))));
  const answer = h("p", { id: "recap-answer", role: "status" });
  const body = h("div", { id: "recap-body" }, t("core.loading"));
  const rulesBox = h("div", { id: "recap-rules", class: "panel att-rules" });
  const links = () => {
    xlsx.href = exportHref(state.month, skpdSelect.value, "xlsx");
    csv.href = exportHref(state.month, skpdSelect.value, "csv");
  };
  monthInput.addEventListener("change", () => {
    if (MONTH_RE.test(monthInput.value)) location.hash = `#/attendance/${monthInput.value}`;
  });
  const tools = h("div", { class: "row att-tools" },
    h("label", {}, h("span", {}, t("attendance.month")), monthInput),
    h("label", {}, h("span", {}, t("attendance.skpd")), skpdSelect),
    h("label", {}, h("span", {}, t("attendance.name")), filter),
    h("label", {}, h("span", {}, t("attendance.sort")), sort), xlsx, csv);
  if (hasRole(...CLERK)) {
    const button = h("button", { type: "button", class: "danger", id: "recap-recompute" },
      t("attendance.recompute"));
    button.addEventListener("click", async () => {
      const values = await confirmDialog({ title: t("attendance.recompute_title",
        { month: fmtMonth(state.month) }), text: t("attendance.recompute_text"), danger: true,
      fields: [{ name: "reason", label: t("attendance.reason"), required: true }] });
      if (!values) return;
      button.disabled = true;
      answer.className = "muted";
      answer.textContent = t("attendance.saving");
      try {
        const out = await api("/api/attendance/recompute", { method: "POST",
          body: { month: state.month, reason: values.reason } });
        answer.className = "ok-text";
        answer.textContent = t("attendance.recompute_done", { employees: out.employees,
          changed: out.changed_days, new: out.new_days });
        toast(answer.textContent, "ok");
        await load();
      } catch (err) {
        answer.className = "error";
        answer.textContent = t("attendance.error", { error: errorText(err) });
      } finally { button.disabled = false; }
    });
    tools.append(button);
  }
  clear(box).append(h("div", { class: "panel" }, tools, answer, body), rulesBox);
  links();

  let recap = null;
  const draw = () => drawRecap(body, recap, state, skpdSelect.value, filter.value.trim(),
    sort.value);
  skpdSelect.addEventListener("change", () => { links(); draw(); });
  filter.addEventListener("input", draw);
  sort.addEventListener("change", draw);
  async function load() {
    try {
      const [data, rules] = await Promise.all([
        api(`/api/attendance/recap?month=${state.month}`), loadRules(state)]);
      recap = data;
      const chosen = skpdSelect.value;
      clear(skpdSelect).append(h("option", { value: "" }, t("attendance.all_skpd")),
        data.skpds.map((s) => h("option", { value: s.skpd, selected: s.skpd === chosen },
          `${s.skpd} — ${s.skpd_name}`)));
      renderRules(rulesBox, rules);
      draw();
    } catch (err) { failBox(body, err); }
  }
  state.reloadRecap = load;
  await load();
}

function renderRules(box, r) {
  const table = (title, b) => h("div", {}, h("h4", {}, title), h("ul", {},
    b.brackets.map((x) => h("li", {}, h("strong", {}, x.code), ` ${t("attendance.rule_from",
      { min: x.from_min })}: ${pct(x.pct)}`)),
    h("li", { class: "muted" }, t("attendance.rule_missing", { code: b.missing_punch }))));
  clear(box).append(h("h3", {}, t("attendance.rules")),
    h("p", { class: "muted" }, `${r.region} · ${r.version} · ${r.basis}`),
    h("div", { class: "att-rule-cols" }, table(t("attendance.rule_tl"), r.late),
      table(t("attendance.rule_psw"), r.early),
      h("div", {}, h("h4", {}, "TK"), h("ul", {},
        h("li", {}, t("attendance.rule_tk", { pct: pct(r.absent_cut_pct) })),
        h("li", {}, t("attendance.rule_cap", { pct: pct(r.monthly_cap_pct) })),
        h("li", {}, t("attendance.rule_grace", { min: r.grace_min }))))));
}

const SORTS = {
  nip: (a, b) => a.nip.localeCompare(b.nip),
  cut: (a, b) => (b.cut_pct - a.cut_pct) || a.nip.localeCompare(b.nip),
  name: (a, b) => a.name.localeCompare(b.name) || a.nip.localeCompare(b.nip),
};

function drawRecap(body, recap, state, skpd, needle, order) {
  clear(body);
  if (!recap.employees.length) {
    body.append(h("p", { class: "empty" }, t("attendance.no_recap")));
    return;
  }
  const skpds = recap.skpds.filter((s) => !skpd || s.skpd === skpd);
  body.append(h("h3", {}, t("attendance.per_skpd")), h("table", { id: "recap-skpds" },
    h("thead", {}, h("tr", {}, h("th", {}, t("attendance.skpd")),
      h("th", { class: "num" }, t("attendance.employees")),
      h("th", { class: "num" }, t("attendance.working_days")),
      h("th", { class: "num" }, t("attendance.present_days")),
      ["TL1", "TL2", "TL3", "TL4", "PSW1", "PSW2", "PSW3", "PSW4"].map((c) =>
        h("th", { class: "num" }, c)),
      h("th", {}, t("attendance.absences")),
      h("th", { class: "num" }, t("attendance.with_cut")),
      h("th", { class: "num" }, t("attendance.cut_mean")))),
    h("tbody", {}, skpds.map((s) => h("tr", { "data-skpd": s.skpd },
      h("td", {}, s.skpd_name), h("td", { class: "num" }, fmtNumber(s.employees)),
      h("td", { class: "num" }, fmtNumber(s.working_days)),
      h("td", { class: "num" }, fmtNumber(s.present_days)),
      [...s.tl, ...s.psw].map((n) => h("td", { class: "num" }, fmtNumber(n))),
      h("td", {}, absencesText(s.absences)),
      h("td", { class: "num" }, fmtNumber(s.employees_with_cut)),
      h("td", { class: "num" }, pct(s.cut_pct_mean)))))));
  const low = needle.toLowerCase();
  const rows = recap.employees.filter((e) => (!skpd || e.skpd === skpd)
    && (!low || e.name.toLowerCase().includes(low) || e.nip.includes(low)))
    .sort(SORTS[order] || SORTS.nip);
  body.append(h("h3", {}, `${t("attendance.per_employee")} (${rows.length})`),
    h("div", { class: "att-scroll tall" }, h("table", { id: "recap-employees" },
      h("thead", {}, h("tr", {}, h("th", {}, t("attendance.nip")), h("th", {}, t("attendance.name")),
        h("th", {}, t("attendance.skpd")), h("th", { class: "num" }, t("attendance.working_days")),
        h("th", { class: "num" }, t("attendance.present_days")),
        ["TL1", "TL2", "TL3", "TL4", "PSW1", "PSW2", "PSW3", "PSW4"].map((c) =>
          h("th", { class: "num" }, c)),
        h("th", {}, t("attendance.absences")), h("th", { class: "num" }, t("attendance.cut")))),
      h("tbody", {}, rows.map((e) => h("tr", { "data-nip": e.nip },
        h("td", {}, h("a", { href: `#/attendance/${state.month}/${e.nip}` }, e.nip)),
        h("td", {}, e.name), h("td", {}, e.skpd),
        h("td", { class: "num" }, fmtNumber(e.working_days)),
        h("td", { class: "num" }, fmtNumber(e.present_days)),
        [...e.tl, ...e.psw].map((n) => h("td", { class: "num" }, n ? fmtNumber(n) : "·")),
        h("td", {}, absencesText(e.absences)),
        h("td", { class: `num ${e.cut_pct > 0 ? "att-cut" : ""}`, "data-cut": e.cut_pct },
          pct(e.cut_pct))))))));
}

// ------------------------------------------------------------------ leave

async function enterLeave(state, presetNip, onDone) {
  const rules = await loadRules(state);
  const first = `${state.month}-01`;
  const values = await confirmDialog({
    title: t("attendance.leave_title"), confirm: t("attendance.leave_add"),
    fields: [
      { name: "nip", label: t("attendance.nip"), value: presetNip || "", required: true },
      { name: "type", label: t("attendance.leave_kind"), type: "select", value: "CT",
        options: rules.leave_types.map((k) => [k.code, leaveName(rules, k.code)]) },
      { name: "first_day", label: t("attendance.leave_from"), type: "date", value: first,
        required: true },
      { name: "last_day", label: t("attendance.leave_to"), type: "date", value: first,
        required: true },
      { name: "doc_ref", label: t("attendance.leave_doc"), required: true },
    ] });
  if (!values) return;
  const nip = values.nip.replace(/\s+/g, "");
  if (!NIP_RE.test(nip)) { toast(t("attendance.leave_bad_nip"), "error"); onDone(null, new Error(t("attendance.leave_bad_nip"))); return; }
  if (values.last_day < values.first_day) {
    toast(t("attendance.leave_bad_dates"), "error");
    onDone(null, new Error(t("attendance.leave_bad_dates")));
    return;
  }
  const ok = await confirmDialog({ title: t("attendance.leave_confirm_title", { kind: values.type,
    nip, from: fmtDay(values.first_day), to: fmtDay(values.last_day) }),
  text: t("attendance.leave_confirm_text") });
  if (!ok) return;
  try {
    const out = await api("/api/attendance/leave", { method: "POST", body: { nip,
      type: values.type, first_day: values.first_day, last_day: values.last_day,
      doc_ref: values.doc_ref.trim() } });
    onDone(t("attendance.leave_saved", { id: out.leave_id, changed: out.changed_days ?? 0 }));
  } catch (err) { onDone(null, err); }
}

async function revokeLeave(row, onDone) {
  const values = await confirmDialog({ title: t("attendance.revoke_title", { id: row.id,
    kind: row.code, nip: row.nip }), text: t("attendance.revoke_text"), danger: true,
  confirm: t("attendance.revoke"), fields: [{ name: "reason", label: t("attendance.reason"),
    required: true }] });
  if (!values) return;
  try {
    const out = await api(`/api/attendance/leave/${row.id}/revoke`, { method: "POST",
      body: { reason: values.reason } });
    onDone(t("attendance.revoked", { id: row.id, changed: out.changed_days ?? 0 }));
  } catch (err) { onDone(null, err); }
}

async function renderLeave(box, state, nip = null) {
  const answer = h("p", { id: "leave-answer", role: "status" });
  const list = h("div", { id: "leave-list" }, t("core.loading"));
  const done = async (message, err) => {
    if (err) {
      answer.className = "error";
      answer.textContent = t("attendance.error", { error: errorText(err) });
      toast(answer.textContent, "error");
      return;
    }
    answer.className = "ok-text";
    answer.textContent = message;
    toast(message, "ok");
    await load();
    if (state.reloadRecap) await state.reloadRecap();
    if (state.reloadDays) await state.reloadDays();
  };
  const tools = h("div", { class: "row" });
  if (hasRole(...CLERK)) {
    tools.append(h("button", { type: "button", class: "primary", id: "leave-add",
      onclick: () => enterLeave(state, nip, done) }, t("attendance.leave_add")));
  }
  clear(box).append(tools, answer, list);
  async function load() {
    try {
      const q = new URLSearchParams({ month: state.month, revoked: "true" });
      if (nip) q.set("nip", nip);
      const [rows, rules] = await Promise.all([api(`/api/attendance/leave?${q}`),
        loadRules(state)]);
      clear(list);
      if (!rows.length) { list.append(h("p", { class: "muted" }, t("attendance.leave_none"))); return; }
      list.append(h("table", { id: "leave-table" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, t("attendance.nip")),
          h("th", {}, t("attendance.name")), h("th", {}, t("attendance.leave_kind")),
          h("th", {}, t("attendance.leave_from")), h("th", {}, t("attendance.leave_to")),
          h("th", {}, t("attendance.leave_doc")), h("th", {}, t("attendance.leave_source")),
          h("th", {}, t("attendance.leave_by")), h("th", {}, ""))),
        h("tbody", {}, rows.map((r) => h("tr", { "data-leave": r.id,
          class: r.revoked_at ? "att-revoked" : null },
          h("td", {}, String(r.id)),
          h("td", {}, h("a", { href: `#/attendance/${state.month}/${r.nip}` }, r.nip)),
          h("td", {}, r.name), h("td", {}, leaveName(rules, r.code)),
          h("td", {}, fmtDay(r.first_day)), h("td", {}, fmtDay(r.last_day)),
          h("td", {}, r.doc_ref), h("td", {}, r.source),
          h("td", {}, `${r.entered_by} · ${fmtDateTime(r.entered_at)}`,
            r.revoked_at ? h("div", { class: "muted" }, `${t("attendance.revoke")}: ${r.revoked_by} · ${fmtDateTime(r.revoked_at)}`) : null),
          h("td", {}, !r.revoked_at && hasRole(...CLERK) ? h("button", { type: "button",
            class: "secondary", "data-action": "revoke", onclick: () => revokeLeave(r, done) },
          t("attendance.revoke")) : null))))));
    } catch (err) { failBox(list, err); }
  }
  await load();
}

// ------------------------------------------------------------------ one employee

function employeeView(el, state, nip) {
  const head = h("div", { id: "emp-head", class: "panel" }, t("core.loading"));
  const days = h("div", { id: "emp-days", class: "panel" });
  const leaveBox = h("div", { id: "att-leave", class: "panel" });
  el.append(h("p", {}, h("a", { href: `#/attendance/${state.month}`, id: "emp-back" },
    t("attendance.back", { month: fmtMonth(state.month) }))), head,
  h("h2", {}, t("attendance.detail")), days, h("h2", {}, t("attendance.leave")), leaveBox);
  async function load() {
    try {
      const [recap, rows, rules] = await Promise.all([
        api(`/api/attendance/recap?month=${state.month}`),
        api(`/api/attendance/employees/${nip}/days?month=${state.month}`), loadRules(state)]);
      const e = recap.employees.find((x) => x.nip === nip);
      renderEmployeeHead(head, e, nip, state, rules);
      renderDays(days, rows, rules);
    } catch (err) { failBox(head, err); }
  }
  state.reloadDays = load;
  load();
  renderLeave(leaveBox, state, nip);
}

function renderEmployeeHead(box, e, nip, state, rules) {
  clear(box);
  if (!e) {
    box.append(h("h2", {}, nip), h("p", { class: "muted" }, t("attendance.no_recap")));
    return;
  }
  box.append(h("div", { class: "row att-emp" },
    h("div", {}, h("h2", { id: "emp-name" }, e.name), h("div", { class: "muted" },
      `${e.nip} · ${e.position} · ${e.unit} · ${e.skpd_name}`)),
    h("div", { class: "att-stat" }, h("span", { class: "att-n" }, fmtNumber(e.working_days)),
      h("span", { class: "att-l" }, t("attendance.working_days"))),
    h("div", { class: "att-stat ok" }, h("span", { class: "att-n" }, fmtNumber(e.present_days)),
      h("span", { class: "att-l" }, t("attendance.present_days"))),
    h("div", { class: "att-stat" }, h("span", { class: "att-n" }, absencesText(e.absences)),
      h("span", { class: "att-l" }, t("attendance.absences"))),
    h("div", { class: `att-stat ${e.cut_pct > 0 ? "bad" : ""}`, id: "emp-cut" },
      h("span", { class: "att-n" }, pct(e.cut_pct)), h("span", { class: "att-l" },
        t("attendance.cut")))));
  box.append(h("h3", {}, t("attendance.cut_lines")));
  if (!e.lines.length) {
    box.append(h("p", { class: "muted" }, t("attendance.no_cut")));
    return;
  }
  const late = Object.fromEntries(rules.late.brackets.map((b) => [b.code, b]));
  const early = Object.fromEntries(rules.early.brackets.map((b) => [b.code, b]));
  const ruleOf = (code) => {
    const b = late[code] || early[code];
    if (b) return `${b.code}: ${t("attendance.rule_from", { min: b.from_min })} → ${pct(b.pct)}`;
    if (code === "TK") return t("attendance.rule_tk", { pct: pct(rules.absent_cut_pct) });
    if (code === "BATAS") return t("attendance.rule_cap", { pct: pct(rules.monthly_cap_pct) });
    return code;
  };
  box.append(h("div", { class: "att-scroll" }, h("table", { id: "emp-lines" },
    h("thead", {}, h("tr", {}, h("th", {}, t("attendance.day")), h("th", {}, t("attendance.code")),
      h("th", { class: "num" }, t("attendance.cut")), h("th", {}, t("attendance.why")),
      h("th", {}, t("attendance.rules")))),
    h("tbody", {}, e.lines.map((l) => h("tr", { "data-code": l.code },
      h("td", {}, fmtDay(l.day)), h("td", {}, h("strong", {}, l.code)),
      h("td", { class: "num" }, pct(l.pct)),
      h("td", {}, lang() === "id" ? l.text_id : l.text_en),
      h("td", { class: "muted" }, ruleOf(l.code))))))),
  h("p", { id: "emp-total" }, t("attendance.cut_total", { total: pct(e.cut_uncapped_pct),
    capped: pct(e.cut_pct) })));
}

function renderDays(box, rows, rules) {
  clear(box).append(h("div", { class: "att-scroll tall" }, h("table", { id: "emp-days-table" },
    h("thead", {}, h("tr", {}, h("th", {}, t("attendance.day")), h("th", {}, t("attendance.status")),
      h("th", {}, t("attendance.schedule")), h("th", {}, t("attendance.in")),
      h("th", {}, t("attendance.out")), h("th", { class: "num" }, t("attendance.late_min")),
      h("th", { class: "num" }, t("attendance.early_min")), h("th", {}, "TL/PSW"),
      h("th", { class: "num" }, t("attendance.cut")), h("th", {}, t("attendance.why")),
      h("th", {}, t("attendance.flags")))),
    h("tbody", {}, rows.map((d) => h("tr", { "data-day": d.day, "data-status": d.status,
      class: d.cut_pct > 0 ? "att-cutday" : null },
      h("td", {}, fmtDay(d.day)), h("td", {}, statusText(rules, d.status)),
      h("td", {}, d.sched_start ? `${wall(d.sched_start).slice(0, 5)}–${wall(d.sched_end).slice(0, 5)}` : "—"),
      h("td", {}, wall(d.in_at)), h("td", {}, wall(d.out_at)),
      h("td", { class: "num" }, d.late_min ?? "—"), h("td", { class: "num" }, d.early_min ?? "—"),
      h("td", {}, [d.tl ? `TL${d.tl}` : null, d.psw ? `PSW${d.psw}` : null].filter(Boolean)
        .join(" ") || "—"),
      h("td", { class: "num" }, d.cut_pct ? pct(d.cut_pct) : "—"),
      h("td", {}, d.lines.length ? d.lines.map((l) => h("div", {}, h("strong", {}, l.code),
        ` ${pct(l.pct)} — ${lang() === "id" ? l.text_id : l.text_en}`))
        : (lang() === "id" ? d.reason_id : d.reason_en)),
      h("td", { class: "muted" }, d.flag_names.map((f) => t(`attendance.flag.${f}`)).join(", "))))))));
}

export default { id: "attendance", roles: CLERK, nav: true, strings, mount };
