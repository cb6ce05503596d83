// The intersection page (#/intersection/<id>): the live signal per phase, the plan in force and
// the next one, detectors with queue estimates, open alarms, the last hour's flow and signal
// wait as SVG charts, and the operator's overrides (hold, force, plan, flash, release), each
// confirmed with a duration and a reason. It polls GET /api/intersections/{id} once a second and
// /history once a minute; changes go through the audited POST endpoints, which check the role
// again (the controls are only hidden here). Without an id it lists the intersections.
import {
  api, clear, confirmDialog, errorText, every, fmtDateTime, fmtNumber, fmtTime, h, hasRole, lang,
  site, t, toast, useCss,
} from "../core.js";
import { alarmText } from "./alarms.js";

const OVERRIDE_ROLES = ["operator", "supervisor", "admin"];
const LIVE_MS = 1000;
const HISTORY_MS = 60_000;
const WAITING = new Set(["R", "Y"]); // lamps a vehicle stops at
const PALETTE = ["#38bdf8", "#f472b6", "#a3e635", "#fb923c", "#c084fc", "#2dd4bf", "#facc15",
  "#f87171", "#60a5fa", "#4ade80", "#e879f9", "#fbbf24"];

const strings = {
  id: {
    "intersection.nav": "Simpang",
    "ix.pick": "Pilih simpang", "ix.id": "Simpang", "ix.edge": "Edge", "ix.mode": "Mode",
    "ix.source": "Sumber waktu", "ix.online": "daring", "ix.offline": "luring",
    "ix.unknown_id": "Simpang {id} tidak dikenal.", "ix.age": "data {age} s lalu",
    "ix.signal": "Sinyal per fase", "ix.phase": "Fase {n}", "ix.cycle": "Waktu siklus {t} dari {c} s",
    "ix.cycle_local": "Waktu siklus {t} s (rencana lokal)", "ix.cycle_only": "Waktu siklus {t} s",
    "ix.since": "sejak {s} s", "ix.since_min": "sejak ≥ {s} s", "ix.split": "split {s} s",
    "ix.left": "sisa ≈ {s} s", "ix.green_in": "hijau dalam ≈ {s} s", "ix.over_split": "melewati split",
    "ix.no_signal": "Tidak ada keadaan sinyal terkini (simpang luring atau data basi).",
    "lamp.G": "Hijau", "lamp.Y": "Kuning", "lamp.R": "Merah", "lamp.y": "Kuning berkedip",
    "lamp.r": "Merah berkedip", "lamp.X": "Padam",
    "mode.central": "Pusat", "mode.local_fixed": "Lokal (waktu tetap)",
    "mode.local_actuated": "Lokal (aktuasi)", "mode.flash": "Kedip", "mode.off": "Mati",
    "src.adaptive": "Adaptif", "src.central": "Pusat (tetap)", "src.operator_override": "Override operator",
    "src.local_fallback": "Cadangan lokal", "src.flash": "Kedip", "src.off": "Mati",
    "src.unknown": "Tidak diketahui",
    "ix.plan": "Rencana waktu", "ix.plan_now": "Berjalan", "ix.plan_last": "Rencana terakhir (dilanjutkan setelah override)", "ix.plan_next": "Berikutnya (adaptif)",
    "ix.plan_computed": "Terakhir dihitung adaptif", "ix.plan_no": "Rencana", "ix.cycle_s": "Siklus",
    "ix.offset_s": "Offset", "ix.splits_s": "Split per fase", "ix.ds_max": "Derajat kejenuhan maks.",
    "ix.sent_at": "Dikirim", "ix.computed_at": "Dihitung", "ix.controller_plan": "Rencana di pengendali",
    "ix.local_plan": "Pengendali menjalankan rencana lokalnya no. {n}; waktunya tidak dikirim pusat.",
    "ix.no_plan": "Belum ada rencana yang dikirim.", "ix.same_as_now": "sama dengan yang berjalan",
    "ix.last_cmd": "Perintah terakhir", "ix.plan_after": "Berikutnya setelah override (adaptif)",
    "cmd.sent": "terkirim", "cmd.accepted": "diterima", "cmd.applied": "diterapkan",
    "cmd.rejected": "ditolak", "cmd.unanswered": "tak dijawab",
    "ix.detectors": "Detektor dan antrean", "ix.det": "Det.", "ix.det_phase": "Fase",
    "ix.count": "Hitungan/dtk", "ix.flow": "Arus (kend/jam)", "ix.occupancy": "Okupansi",
    "ix.queue": "Antrean (perkiraan)", "ix.fault": "Gangguan", "ix.ok": "Baik",
    "ix.flowing": "mengalir", "ix.queue_veh": "≈ {n} kend.", "ix.queue_veh_min": "≥ {n} kend.", "ix.standing": "berdiri di atas loop",
    "ix.queue_note": "Antrean = arus terukur × lama merah fasenya (kedatangan merata); fase detektor dipelajari dari hitungan saat hijau dalam 1 jam terakhir.",
    "ix.no_detectors": "Tidak ada data detektor.",
    "ix.alarms": "Alarm terbuka", "ix.no_alarms": "Tidak ada alarm terbuka.",
    "ix.charts": "Satu jam terakhir", "ix.flow_chart": "Arus per detektor (kend/jam)",
    "ix.wait_chart": "Tunggu sinyal rata-rata per fase (detik, perkiraan)",
    "ix.total": "Total", "ix.mean": "Rata-rata", "ix.no_history": "Belum ada data tersimpan.",
    "ix.wait_note": "Tunggu = waktu dari kedatangan saat merah/kuning sampai hijau berikutnya, kendaraan datang merata (batas bawah).",
    "ix.override": "Override sinyal", "ix.override_none": "Tidak ada override aktif.",
    "ix.override_active": "{action} oleh {user} ({role}) sejak {from}, berakhir {until} ({left})",
    "ix.left_min": "sisa {m} mnt", "ix.left_s": "sisa {s} dtk",
    "ix.override_reason": "Alasan: {r}",
    "act.hold": "Tahan fase", "act.force": "Paksa fase", "act.plan": "Ganti rencana",
    "act.flash": "Kedip", "act.release": "Lepas override",
    "ov.hold": "Tahan", "ov.force": "Paksa", "ov.flash": "Kedip", "ov.plan": "Rencana operator",
    "ov.phase": "fase {n}", "ov.release": "Lepas",
    "dlg.hold": "Tahan fase di {id}?", "dlg.hold_text": "Fase yang dipilih menjadi hijau dan tetap hijau sampai dilepas atau berakhir.",
    "dlg.force": "Paksa fase di {id}?", "dlg.force_text": "Sinyal pindah ke fase ini secepat aman (setelah hijau minimum, kuning dan semua-merah).",
    "dlg.flash": "Kedipkan sinyal di {id}?", "dlg.flash_text": "Semua lampu berkedip (kuning/merah); arus diatur rambu. Gunakan hanya bila perlu.",
    "dlg.plan": "Jalankan rencana operator di {id}?", "dlg.plan_text": "Split per fase (hijau + kuning + semua-merah), dipisah koma, jumlahnya = siklus.",
    "dlg.release": "Lepas override di {id}?", "dlg.release_text": "Kontrol adaptif berjalan lagi.",
    "dlg.phase": "Fase",
    "dlg.duration": "Durasi (menit; berakhir otomatis)", "dlg.reason": "Alasan (tercatat di log audit)",
    "dlg.plan_no": "Nomor rencana", "dlg.cycle": "Siklus (s)", "dlg.offset": "Offset (s)",
    "dlg.splits": "Split (s), mis. 30, 25", "dlg.splits_bad": "Split harus angka dipisah koma",
    "ix.done": "{action} dikirim ke {id}", "ix.released": "Override {id} dilepas",
    "ix.action_failed": "{action} gagal",
  },
  en: {
    "intersection.nav": "Intersection",
    "ix.pick": "Choose an intersection", "ix.id": "Intersection", "ix.edge": "Edge", "ix.mode": "Mode",
    "ix.source": "Timing source", "ix.online": "online", "ix.offline": "offline",
    "ix.unknown_id": "Intersection {id} is not known.", "ix.age": "data {age} s old",
    "ix.signal": "Signal per phase", "ix.phase": "Phase {n}", "ix.cycle": "Cycle time {t} of {c} s",
    "ix.cycle_local": "Cycle time {t} s (local plan)", "ix.cycle_only": "Cycle time {t} s",
    "ix.since": "for {s} s", "ix.since_min": "for ≥ {s} s", "ix.split": "split {s} s",
    "ix.left": "≈ {s} s left", "ix.green_in": "green in ≈ {s} s", "ix.over_split": "past its split",
    "ix.no_signal": "No current signal state (intersection offline or data stale).",
    "lamp.G": "Green", "lamp.Y": "Yellow", "lamp.R": "Red", "lamp.y": "Flashing yellow",
    "lamp.r": "Flashing red", "lamp.X": "Dark",
    "mode.central": "Central", "mode.local_fixed": "Local (fixed time)",
    "mode.local_actuated": "Local (actuated)", "mode.flash": "Flash", "mode.off": "Off",
    "src.adaptive": "Adaptive", "src.central": "Central (fixed)", "src.operator_override": "Operator override",
    "src.local_fallback": "Local fallback", "src.flash": "Flash", "src.off": "Off",
    "src.unknown": "Unknown",
    "ix.plan": "Timing plan", "ix.plan_now": "In force", "ix.plan_last": "Last plan (resumes after the override)", "ix.plan_next": "Next (adaptive)",
    "ix.plan_computed": "Last adaptive computation", "ix.plan_no": "Plan", "ix.cycle_s": "Cycle",
    "ix.offset_s": "Offset", "ix.splits_s": "Splits per phase", "ix.ds_max": "Max. degree of saturation",
    "ix.sent_at": "Sent", "ix.computed_at": "Computed", "ix.controller_plan": "Plan in the controller",
    "ix.local_plan": "The controller runs its local plan no. {n}; its timing is not sent by the control room.",
    "ix.no_plan": "No plan sent yet.", "ix.same_as_now": "same as the plan in force",
    "ix.last_cmd": "Last command", "ix.plan_after": "Next after the override (adaptive)",
    "cmd.sent": "sent", "cmd.accepted": "accepted", "cmd.applied": "applied",
    "cmd.rejected": "rejected", "cmd.unanswered": "unanswered",
    "ix.detectors": "Detectors and queues", "ix.det": "Det.", "ix.det_phase": "Phase",
    "ix.count": "Count/s", "ix.flow": "Flow (veh/h)", "ix.occupancy": "Occupancy",
    "ix.queue": "Queue (estimate)", "ix.fault": "Fault", "ix.ok": "OK",
    "ix.flowing": "flowing", "ix.queue_veh": "≈ {n} veh", "ix.queue_veh_min": "≥ {n} veh", "ix.standing": "standing on the loop",
    "ix.queue_note": "Queue = measured flow × how long its phase has been red (even arrivals); a detector's phase is learned from its counts during green over the last hour.",
    "ix.no_detectors": "No detector data.",
    "ix.alarms": "Open alarms", "ix.no_alarms": "No open alarms.",
    "ix.charts": "The last hour", "ix.flow_chart": "Flow per detector (veh/h)",
    "ix.wait_chart": "Mean signal wait per phase (seconds, estimate)",
    "ix.total": "Total", "ix.mean": "Mean", "ix.no_history": "No stored data yet.",
    "ix.wait_note": "Wait = time from arriving at red/yellow to the next green, vehicles arriving evenly (a lower bound).",
    "ix.override": "Signal override", "ix.override_none": "No active override.",
    "ix.override_active": "{action} by {user} ({role}) since {from}, ends {until} ({left})",
    "ix.left_min": "{m} min left", "ix.left_s": "{s} s left",
    "ix.override_reason": "Reason: {r}",
    "act.hold": "Hold phase", "act.force": "Force phase", "act.plan": "Switch plan",
    "act.flash": "Flash", "act.release": "Release override",
    "ov.hold": "Hold", "ov.force": "Force", "ov.flash": "Flash", "ov.plan": "Operator plan",
    "ov.phase": "phase {n}", "ov.release": "Release",
    "dlg.hold": "Hold a phase at {id}?", "dlg.hold_text": "The chosen phase turns green and stays green until released or expired.",
    "dlg.force": "Force a phase at {id}?", "dlg.force_text": "The signal moves to this phase as soon as it is safe (after minimum green, yellow and all-red).",
    "dlg.flash": "Flash the signals at {id}?", "dlg.flash_text": "All lamps flash (yellow/red); traffic follows the signs. Use only when needed.",
    "dlg.plan": "Run an operator's plan at {id}?", "dlg.plan_text": "Splits per phase (green + yellow + all-red), comma-separated, adding up to the cycle.",
    "dlg.release": "Release the override at {id}?", "dlg.release_text": "Adaptive control resumes.",
    "dlg.phase": "Phase",
    "dlg.duration": "Duration (minutes; ends by itself)", "dlg.reason": "Reason (kept in the audit log)",
    "dlg.plan_no": "Plan number", "dlg.cycle": "Cycle (s)", "dlg.offset": "Offset (s)",
    "dlg.splits": "Splits (s), e.g. 30, 25", "dlg.splits_bad": "Splits must be numbers separated by commas",
    "ix.done": "{action} sent to {id}", "ix.released": "Override of {id} released",
    "ix.action_failed": "{action} failed",
  },
};

// ------------------------------------------------------------------ small helpers

const num = (v, d = 0) => fmtNumber(v, d);
const secs = (v) => fmtNumber(Math.max(0, Math.round(v)), 0);

function hhmm(iso) {
  return new Intl.DateTimeFormat(lang() === "id" ? "id-ID" : "en-GB",
    { timeZone: site.timezone, hour: "2-digit", minute: "2-digit", hour12: false })
    .format(new Date(iso)).replace(".", ":");
}

function lampText(l) { return t(`lamp.${l}`); }
function srcText(s) { return t(`src.${s || "unknown"}`); }

function overrideText(ov) {
  const what = ov.action === "hold" || ov.action === "force"
    ? `${t(`ov.${ov.action}`)} ${ov.phase ? t("ov.phase", { n: ov.phase }) : ""}`.trim()
    : t(`ov.${ov.action}`);
  const left_s = (Date.parse(ov.expires_at) - Date.now()) / 1000;
  const left = left_s >= 60 ? t("ix.left_min", { m: num(Math.round(left_s / 60), 0) })
    : t("ix.left_s", { s: secs(left_s) });
  return t("ix.override_active", { action: what, user: ov.user, role: t(`role.${ov.role}`),
    from: fmtTime(ov.created_at), until: fmtDateTime(ov.expires_at), left });
}

function kv(rows) {
  return h("dl", { class: "ix-kv" }, rows.filter(Boolean).map(([k, v]) => [h("dt", {}, k),
    h("dd", {}, v)]));
}

function planRows(p) {
  return [
    [t("ix.plan_no"), String(p.plan)],
    [t("ix.cycle_s"), `${num(p.cycle_s, 1)} s`],
    [t("ix.offset_s"), `${num(p.offset_s, 1)} s`],
    [t("ix.splits_s"), `${p.splits_s.map((s) => num(s, 1)).join(" · ")} s`],
  ];
}

/** The last timing plan the control room sent (an override's body is not a plan: during a hold
 * or a flash the plan before it is the one the controller returns to). */
let lastPlan = null;
function currentPlan(d) {
  const sent = d.plan && d.plan.sent;
  if (sent && sent.type === "plan") {
    lastPlan = { ...sent, sent_at: d.plan.sent_at, sent_source: d.plan.sent_source, id: d.intersection_id };
  }
  return lastPlan && lastPlan.id === d.intersection_id ? lastPlan : null;
}

function samePlan(a, b) {
  return a && b && a.cycle_s === b.cycle_s && a.offset_s === b.offset_s
    && a.splits_s.length === b.splits_s.length && a.splits_s.every((s, k) => s === b.splits_s[k]);
}

// ------------------------------------------------------------------ charts (SVG, no library)

/** A round grid step for values up to `v` (about four lines): 1, 2, 2.5 or 5 × 10^k. */
function niceStep(v) {
  const raw = v / 4;
  const p = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5]) if (m * p >= raw) return m * p;
  return 10 * p;
}

/** A line chart: series [{label, values (null = gap), color, bold}], x labels from buckets. */
function lineChart({ buckets, bucketS, series, id, minTop = 1 }) {
  const W = 640; const H = 220; const L = 48; const R = 10; const T = 10; const B = 26;
  const all = series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
  const step = niceStep(Math.max(minTop, ...all));
  const top = step * Math.max(1, Math.ceil(Math.max(minTop, ...all) / step));
  const digits = Number.isInteger(step) ? 0 : Number.isInteger(step * 10) ? 1 : 2;
  const n = buckets.length;
  const x = (k) => L + (n <= 1 ? 0 : (k * (W - L - R)) / (n - 1));
  const y = (v) => T + (H - T - B) * (1 - v / top);
  const svg = h("svg:svg", { viewBox: `0 0 ${W} ${H}`, class: "ix-chart", role: "img", id,
    "aria-label": series.map((s) => s.label).join(", ") });
  for (let g = 0; g * step <= top + 1e-9; g++) {
    const v = g * step;
    svg.append(h("svg:line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid" }),
      h("svg:text", { x: L - 6, y: y(v) + 4, class: "tick", "text-anchor": "end" }, num(v, Number.isInteger(v) ? 0 : digits)));
  }
  // Time labels on round times (every 5, 10, 15, 30 … minutes), at most eight of them.
  const span = n * bucketS;
  const labelEvery = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600]
    .find((s) => s >= bucketS && span / s <= 8) || span;
  for (let k = 0; k < n; k++) {
    if ((Date.parse(buckets[k]) / 1000) % labelEvery !== 0) continue;
    const anchor = x(k) > W - R - 24 ? "end" : x(k) < L + 24 ? "start" : "middle";
    svg.append(h("svg:text", { x: x(k), y: H - 8, class: "tick", "text-anchor": anchor },
      hhmm(buckets[k])));
  }
  for (const s of series) {
    let d = "";
    let pen = false;
    s.values.forEach((v, k) => {
      if (v === null || v === undefined) { pen = false; return; }
      d += `${pen ? "L" : "M"}${x(k).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    if (d) {
      svg.append(h("svg:path", { d, fill: "none", stroke: s.color, "stroke-width": s.bold ? 3 : 1.5,
        "stroke-linejoin": "round", "data-series": s.label }, h("svg:title", {}, s.label)));
    }
    // A lone point between gaps would be invisible as a path.
    s.values.forEach((v, k) => {
      const lone = v !== null && v !== undefined && (k === 0 || s.values[k - 1] == null)
        && (k === n - 1 || s.values[k + 1] == null);
      if (lone) svg.append(h("svg:circle", { cx: x(k), cy: y(v), r: 2.5, fill: s.color }));
    });
  }
  const legend = h("div", { class: "ix-legend" }, series.map((s) =>
    h("span", {}, h("i", { style: { background: s.color } }), s.label)));
  return h("div", { class: "ix-chartbox" }, svg, legend);
}

// ------------------------------------------------------------------ the list (no id)

function mountList(el) {
  el.append(h("h1", {}, t("ix.pick")));
  const status = h("p", { class: "error", role: "alert" });
  const box = h("div", {});
  el.append(status, box);
  return every(5000, async () => {
    const rows = await api("/api/intersections");
    clear(box).append(h("table", { id: "ix-list" },
      h("thead", {}, h("tr", {}, h("th", {}, t("ix.id")), h("th", {}, t("ix.edge")),
        h("th", {}, t("ix.mode")), h("th", {}, t("ix.source")))),
      h("tbody", {}, rows.map((r) => h("tr", {},
        h("td", {}, h("a", { href: `#/intersection/${encodeURIComponent(r.intersection_id)}` },
          r.intersection_id)),
        h("td", {}, r.edge_id),
        h("td", {}, h("span", { class: `badge ${r.online ? "ok" : "off"}` },
          r.online ? t("ix.online") : t("ix.offline")), " ", r.mode ? t(`mode.${r.mode}`) : ""),
        h("td", {}, srcText(r.plan_source)))))));
  }, status);
}

// ------------------------------------------------------------------ the page

function mountIntersection(el, id) {
  const mayOverride = hasRole(...OVERRIDE_ROLES);
  const title = h("h1", {}, id);
  const badges = h("div", { class: "row ix-badges", id: "ix-badges" });
  const status = h("p", { class: "error", id: "ix-status", role: "alert" });
  const signalBox = h("div", { id: "ix-signal" });
  const planBox = h("div", { id: "ix-plan" });
  const detBox = h("div", { id: "ix-detectors" });
  const alarmBox = h("div", { id: "ix-alarms" });
  const chartBox = h("div", { id: "ix-charts", class: "ix-charts" }, h("p", { class: "muted" }, t("core.loading")));
  const overrideNow = h("div", { id: "ix-override-now" });
  const actionError = h("p", { class: "error", id: "ix-action-error", role: "alert" });

  const state = {
    data: null, history: null, nPhases: 0, phaseOf: {}, flowNow: {},
    lamps: {}, // phase → {lamp, since (ms, telemetry clock), known, waitingSince, waitKnown}
  };

  const buttons = {};
  const controls = mayOverride ? h("div", { class: "panel ix-override", id: "ix-override" },
    h("h2", {}, t("ix.override")), overrideNow,
    h("div", { class: "row ix-actions" }, ["hold", "force", "plan", "flash", "release"].map((a) => {
      buttons[a] = h("button", { type: "button", class: a === "flash" ? "danger" : a === "release" ? "primary" : "",
        "data-action": a, onclick: () => act(a) }, t(`act.${a}`));
      return buttons[a];
    })), actionError) : null;

  el.append(
    h("div", { class: "ix-head" }, h("a", { href: "#/intersection", class: "muted" }, `← ${t("ix.pick")}`),
      title, badges),
    status,
    h("div", { class: "ix-grid" },
      h("div", { class: "ix-col" },
        h("div", { class: "panel" }, h("h2", {}, t("ix.signal")), signalBox),
        controls,
        h("div", { class: "panel" }, h("h2", {}, t("ix.alarms")), alarmBox)),
      h("div", { class: "ix-col" },
        h("div", { class: "panel" }, h("h2", {}, t("ix.plan")), planBox),
        h("div", { class: "panel" }, h("h2", {}, t("ix.detectors")), detBox)),
      h("div", { class: "ix-col ix-wide" },
        h("div", { class: "panel" }, h("h2", {}, t("ix.charts")), chartBox))));

  // ---------------------------------------------------------------- live

  function track(live) {
    const now = live.ts ? Date.parse(live.ts) : Date.now();
    (live.signal || []).forEach((lamp, k) => {
      const p = k + 1;
      const seen = state.lamps[p];
      if (!seen) {
        state.lamps[p] = { lamp, since: now, known: false, waitingSince: now, waitKnown: false };
        return;
      }
      if (seen.lamp !== lamp) {
        const wasWaiting = WAITING.has(seen.lamp);
        seen.lamp = lamp;
        seen.since = now;
        seen.known = true;
        if (WAITING.has(lamp) && !wasWaiting) { seen.waitingSince = now; seen.waitKnown = true; }
      }
      seen.now = now;
    });
  }

  function renderSignal(d) {
    const live = d.live || {};
    clear(signalBox);
    if (!live.signal) {
      signalBox.append(h("p", { class: "empty", id: "ix-no-signal" }, t("ix.no_signal")));
      return;
    }
    const sent = currentPlan(d);
    const override = d.override;
    // The time left is estimated only while the controller runs the plan the control room
    // sent, without an override: cycle timer against the splits' cumulative ends.
    const planned = sent && live.mode === "central" && !override && live.cycle_timer_s !== null
      && live.cycle_timer_s !== undefined;
    const ends = [];
    if (sent) sent.splits_s.reduce((acc, s) => { ends.push(acc + s); return acc + s; }, 0);
    live.signal.forEach((lamp, k) => {
      const p = k + 1;
      const seen = state.lamps[p] || { since: Date.now(), now: Date.now(), known: false };
      const elapsed = ((seen.now || seen.since) - seen.since) / 1000;
      const cycling = lamp === "G" || lamp === "Y" || lamp === "R";
      const split = cycling && sent ? sent.splits_s[k] : null;
      const notes = [];
      notes.push(t(seen.known ? "ix.since" : "ix.since_min", { s: secs(elapsed) }));
      if (split) notes.push(t("ix.split", { s: num(split, 0) }));
      const over = lamp === "G" && split && seen.known && elapsed > split;
      if (planned && (lamp === "G" || lamp === "Y")) {
        const left = ends[k] - live.cycle_timer_s;
        if (left > 0 && left <= split) notes.push(t("ix.left", { s: secs(left) }));
      } else if (planned && lamp === "R") {
        const start = k === 0 ? 0 : ends[k - 1];
        const wait = (start - live.cycle_timer_s + sent.cycle_s) % sent.cycle_s;
        notes.push(t("ix.green_in", { s: secs(wait) }));
      }
      signalBox.append(h("div", { class: `ix-phase${over ? " over" : ""}`, "data-phase": p,
        "data-lamp": lamp, "data-elapsed": Math.round(elapsed), "data-known": seen.known ? "1" : "0" },
      h("span", { class: `ix-lamp lamp-${lamp}`, "aria-hidden": "true" }),
      h("div", { class: "ix-phase-text" },
        h("div", {}, h("strong", {}, t("ix.phase", { n: p })), " ",
          h("span", { class: "ix-lamp-name" }, lampText(lamp)),
          over ? h("span", { class: "badge warn" }, t("ix.over_split")) : null),
        h("div", { class: "muted" }, notes.join(" · "))),
      split ? h("div", { class: "ix-bar" }, h("i", { class: `lamp-${lamp}`,
        style: { width: `${Math.min(100, (100 * elapsed) / split).toFixed(0)}%` } })) : null));
    });
    if (live.cycle_timer_s !== null && live.cycle_timer_s !== undefined && live.mode !== "flash"
      && live.mode !== "off") {
      const timer = num(live.cycle_timer_s, 0);
      let text = t("ix.cycle_only", { t: timer });
      if (live.mode === "local_fixed" || live.mode === "local_actuated") text = t("ix.cycle_local", { t: timer });
      else if (sent) text = t("ix.cycle", { t: timer, c: num(sent.cycle_s, 0) });
      signalBox.append(h("p", { class: "muted", id: "ix-cycle" }, text));
    }
  }

  function renderBadges(d) {
    const live = d.live || {};
    const stored = d.stored || {};
    const online = d.live ? live.online : stored.online;
    const mode = live.mode || (online ? stored.mode : null);
    const source = d.plan && d.plan.source;
    title.textContent = d.name ? `${d.name} (${id})` : id;
    clear(badges).append(
      h("span", { class: `badge ${online ? "ok" : "bad"}`, id: "ix-online" },
        online ? t("ix.online") : t("ix.offline")),
      mode ? h("span", { class: `badge ${mode === "flash" ? "warn" : ""}`, id: "ix-mode",
        "data-mode": mode }, `${t("ix.mode")}: ${t(`mode.${mode}`)}`) : null,
      h("span", { class: `badge src-${source}`, id: "ix-source", "data-source": source || "unknown" },
        `${t("ix.source")}: ${srcText(source)}`),
      live.edge_id || stored.edge_id ? h("span", { class: "muted" }, `${t("ix.edge")}: ${live.edge_id || stored.edge_id}`) : null,
      (live.age_s ?? stored.age_s) !== null && (live.age_s ?? stored.age_s) !== undefined
        ? h("span", { class: "muted" }, t("ix.age", { age: num(live.age_s ?? stored.age_s, 1) })) : null);
  }

  function renderPlan(d) {
    clear(planBox);
    const plan = d.plan || {};
    const live = d.live || {};
    const sent = currentPlan(d);
    if (plan.source === "local_fallback" && live.controller_plan) {
      planBox.append(h("p", { class: "ix-note" }, t("ix.local_plan", { n: live.controller_plan })));
    }
    if (d.override && d.override.action !== "plan") {
      planBox.append(h("p", { class: "ix-note", id: "ix-plan-override" }, overrideText(d.override)));
    }
    if (sent) {
      const operator = sent.sent_source === "operator";
      planBox.append(h("h3", {}, `${d.override && !operator ? t("ix.plan_last") : t("ix.plan_now")} — ${srcText(operator ? "operator_override" : sent.sent_source)}`),
        kv([...planRows(sent), [t("ix.sent_at"), fmtTime(sent.sent_at)],
          live.controller_plan ? [t("ix.controller_plan"), String(live.controller_plan)] : null]));
    } else if (!(plan.sent && d.override)) {
      planBox.append(h("p", { class: "muted" }, t("ix.no_plan")));
    }
    const c = d.computed;
    if (c) {
      const same = !d.override && samePlan(c, sent);
      planBox.append(h("h3", { id: "ix-next" }, same ? t("ix.plan_computed")
        : d.override ? t("ix.plan_after") : t("ix.plan_next")),
        same ? h("p", { class: "muted" }, `${t("ix.same_as_now")} · ${t("ix.computed_at")} ${fmtTime(c.at)} · ${t("ix.ds_max")} ${num(c.ds_max, 2)}`)
          : kv([...planRows(c), [t("ix.ds_max"), num(c.ds_max, 2)],
            [t("ix.computed_at"), fmtTime(c.at)]]));
    }
    const cmd = d.last_command;
    if (cmd) {
      const what = cmd.body.type === "override" ? `${t(`ov.${cmd.body.action}`)}${cmd.body.phase ? ` ${t("ov.phase", { n: cmd.body.phase })}` : ""}`
        : `${t("ix.plan_no")} ${cmd.body.plan}`;
      planBox.append(h("h3", {}, t("ix.last_cmd")),
        h("p", { id: "ix-last-cmd", "data-status": cmd.status },
          `${what} — `, h("span", { class: `badge ${cmd.status === "applied" ? "ok" : cmd.status === "rejected" || cmd.status === "unanswered" ? "bad" : ""}` },
            t(`cmd.${cmd.status}`)), ` ${fmtTime(cmd.status_at)}`,
          cmd.reason ? h("span", { class: "muted" }, ` — ${cmd.reason}`) : null));
    }
  }

  function renderDetectors(d) {
    clear(detBox);
    const live = d.live || {};
    const stored = d.stored || {};
    const fresh = Boolean(live.det_occupancy_pct) || Boolean(stored.online);
    const occ = live.det_occupancy_pct || (fresh ? stored.det_occupancy_pct : null);
    const faults = live.det_fault || (fresh ? stored.det_fault : null);
    const counts = fresh ? stored.det_count : null;
    const n = Math.max(d.detectors || 0, (occ || []).length);
    if (!n || !occ) { detBox.append(h("p", { class: "empty" }, t("ix.no_detectors"))); return; }
    const rows = [];
    for (let k = 0; k < n; k++) {
      const fault = faults ? faults[k] : null;
      const o = occ[k];
      const phase = state.phaseOf[k];
      const lamp = phase ? (live.signal || [])[phase - 1] : null;
      const flow = state.flowNow[k];
      let queue = "—";
      if (!fault && phase && lamp) {
        if (WAITING.has(lamp) && flow !== null && flow !== undefined) {
          const seen = state.lamps[phase];
          const red_s = seen ? ((seen.now || seen.waitingSince) - seen.waitingSince) / 1000 : 0;
          // Red since before the page opened: what it saw is a lower bound.
          queue = t(seen && !seen.waitKnown ? "ix.queue_veh_min" : "ix.queue_veh",
            { n: num((flow * red_s) / 3600, 0) });
        } else if (lamp === "G") {
          queue = t("ix.flowing");
        }
      }
      if (!fault && o >= 90) queue = `${queue === "—" ? "" : `${queue} · `}${t("ix.standing")}`;
      rows.push(h("tr", { "data-detector": k, "data-fault": fault ? "1" : "0" },
        h("td", {}, String(k + 1)),
        h("td", {}, phase ? String(phase) : "—"),
        h("td", { class: "num" }, counts && counts[k] !== undefined ? String(counts[k]) : "—"),
        h("td", { class: "num" }, flow === null || flow === undefined ? "—" : num(flow, 0)),
        h("td", { class: "ix-occ" }, h("div", { class: "ix-bar" }, h("i", { class: o >= 90 ? "hot" : "",
          style: { width: `${Math.min(100, o || 0).toFixed(0)}%` } })), h("span", { class: "num" }, `${num(o, 0)} %`)),
        h("td", {}, queue),
        h("td", {}, fault ? h("span", { class: "badge bad" }, t("ix.fault")) : h("span", { class: "badge ok" }, t("ix.ok")))));
    }
    detBox.append(h("table", { class: "ix-det" },
      h("thead", {}, h("tr", {}, [t("ix.det"), t("ix.det_phase"), t("ix.count"), t("ix.flow"),
        t("ix.occupancy"), t("ix.queue"), t("ix.fault")].map((x, k) => h("th", { class: k === 2 || k === 3 ? "num" : null }, x)))),
      h("tbody", {}, rows)),
    h("p", { class: "muted" }, t("ix.queue_note")));
  }

  function renderAlarms(d) {
    clear(alarmBox);
    const alarms = d.alarms || [];
    if (!alarms.length) { alarmBox.append(h("p", { class: "muted", id: "ix-no-alarms" }, t("ix.no_alarms"))); return; }
    alarmBox.append(h("ul", { class: "ix-alarms" }, alarms.map((a) => h("li", { "data-code": a.code },
      h("span", { class: `badge ${a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : ""}` }, a.severity),
      " ", h("strong", {}, a.code), a.subject ? ` (${a.subject})` : "", ` — ${alarmText(a)} `,
      h("span", { class: "muted" }, fmtDateTime(a.opened_at))))));
  }

  function renderOverride(d) {
    if (!controls) return;
    clear(overrideNow);
    const ov = d.override;
    if (ov) {
      overrideNow.append(h("div", { class: "ix-active", id: "ix-override-active", "data-action": ov.action,
        "data-phase": ov.phase ?? "", "data-user": ov.user },
        h("strong", {}, overrideText(ov)),
        ov.reason ? h("div", { class: "muted" }, t("ix.override_reason", { r: ov.reason })) : null));
    } else {
      overrideNow.append(h("p", { class: "muted", id: "ix-override-none" }, t("ix.override_none")));
    }
    buttons.release.disabled = !ov;
    const usable = d.in_layout !== false;
    for (const a of ["hold", "force", "plan", "flash"]) buttons[a].disabled = !usable;
  }

  async function refresh() {
    let d;
    try {
      d = await api(`/api/intersections/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err.status === 404) {
        clear(signalBox).append(h("p", { class: "empty" }, t("ix.unknown_id", { id })));
        return;
      }
      throw err;
    }
    state.data = d;
    state.nPhases = d.phases || (d.live && d.live.signal ? d.live.signal.length : 0);
    // Time in a lamp is counted from what the page saw: a silence starts the count again.
    if (d.live && d.live.signal) track(d.live); else state.lamps = {};
    renderBadges(d);
    renderSignal(d);
    renderPlan(d);
    renderDetectors(d);
    renderAlarms(d);
    renderOverride(d);
  }

  // ---------------------------------------------------------------- history

  async function loadHistory() {
    let hist;
    try {
      hist = await api(`/api/intersections/${encodeURIComponent(id)}/history?minutes=60&bucket_s=60`);
    } catch (err) {
      clear(chartBox).append(h("p", { class: err.status === 404 ? "muted" : "error" },
        err.status === 404 ? t("ix.no_history") : `${t("core.load_failed")}: ${errorText(err)}`));
      return;
    }
    state.history = hist;
    state.phaseOf = {};
    state.flowNow = {};
    for (const det of hist.detectors) {
      if (det.phase) state.phaseOf[det.detector] = det.phase;
      // The flow now: the last complete bucket with data (the running one is young).
      const values = det.flow_veh_h.slice(0, -1).filter((v) => v !== null);
      const last = values.length ? values[values.length - 1] : det.flow_veh_h[det.flow_veh_h.length - 1];
      state.flowNow[det.detector] = last ?? null;
    }
    const flowSeries = [
      { label: t("ix.total"), values: hist.flow_total_veh_h, color: "#e5e9f0", bold: true },
      ...hist.detectors.map((det, k) => ({ label: `${t("ix.det")} ${det.detector + 1}`,
        values: det.flow_veh_h, color: PALETTE[k % PALETTE.length] })),
    ];
    const waitSeries = [
      { label: t("ix.mean"), values: hist.wait_mean_s, color: "#e5e9f0", bold: true },
      ...hist.phases.map((ph, k) => ({ label: t("ix.phase", { n: ph.phase }), values: ph.wait_s,
        color: PALETTE[k % PALETTE.length] })),
    ];
    const any = hist.flow_total_veh_h.some((v) => v !== null) || hist.wait_mean_s.some((v) => v !== null);
    clear(chartBox).append(...(any ? [
      h("figure", {}, h("figcaption", {}, t("ix.flow_chart")),
        lineChart({ buckets: hist.buckets, bucketS: hist.bucket_s, series: flowSeries, id: "ix-flow-chart", minTop: 100 })),
      h("figure", {}, h("figcaption", {}, t("ix.wait_chart")),
        lineChart({ buckets: hist.buckets, bucketS: hist.bucket_s, series: waitSeries, id: "ix-wait-chart", minTop: 10 }),
        h("p", { class: "muted" }, t("ix.wait_note"))),
    ] : [h("p", { class: "muted" }, t("ix.no_history"))]));
    if (state.data) renderDetectors(state.data);
  }

  // ---------------------------------------------------------------- actions

  function phaseOptions() {
    const n = state.nPhases || 1;
    const opts = [];
    for (let p = 1; p <= n; p++) opts.push([String(p), t("ix.phase", { n: p })]);
    return opts;
  }

  function greenPhase() {
    const signal = (state.data && state.data.live && state.data.live.signal) || [];
    const k = signal.indexOf("G");
    return k >= 0 ? String(k + 1) : "1";
  }

  const common = () => [
    { name: "duration_min", label: t("dlg.duration"), type: "number", value: 15, min: 1, max: 240,
      step: 1, required: true },
    { name: "reason", label: t("dlg.reason"), type: "textarea", required: true },
  ];

  async function act(action) {
    actionError.textContent = "";
    const d = state.data || {};
    let fields = [];
    if (action === "hold" || action === "force") {
      // The phase green now is the one an operator usually means to hold.
      fields = [{ name: "phase", label: t("dlg.phase"), type: "select", options: phaseOptions(),
        value: greenPhase() }, ...common()];
    } else if (action === "plan") {
      const base = (d.plan && d.plan.sent) || d.computed;
      fields = [
        { name: "plan", label: t("dlg.plan_no"), type: "number", value: base ? base.plan : 1, min: 1, max: 255, required: true },
        { name: "cycle_s", label: t("dlg.cycle"), type: "number", value: base ? base.cycle_s : "", min: 1, max: 300, step: "any", required: true },
        { name: "offset_s", label: t("dlg.offset"), type: "number", value: base ? base.offset_s : 0, min: 0, max: 300, step: "any", required: true },
        { name: "splits", label: t("dlg.splits"), type: "text", value: base ? base.splits_s.join(", ") : "", required: true },
        ...common()];
    } else if (action === "flash") {
      fields = common();
    } else {
      fields = [{ name: "reason", label: t("dlg.reason"), type: "textarea", required: true }];
    }
    const values = await confirmDialog({ title: t(`dlg.${action}`, { id }), text: t(`dlg.${action}_text`),
      fields, confirm: t(`act.${action}`), danger: action === "flash" });
    if (!values) return;
    const base = `/api/intersections/${encodeURIComponent(id)}`;
    let path = `${base}/override`;
    let body;
    if (action === "release") {
      path = `${base}/release`;
      body = { reason: values.reason.trim() };
    } else {
      const duration_s = Number(values.duration_min) * 60;
      if (action === "plan") {
        const splits = values.splits.split(/[,;\s]+/).filter(Boolean).map(Number);
        if (!splits.length || splits.some((s) => !Number.isFinite(s))) {
          actionError.textContent = `${t("ix.action_failed", { action: t("act.plan") })}: ${t("dlg.splits_bad")}`;
          return;
        }
        path = `${base}/plan`;
        body = { plan: Number(values.plan), cycle_s: Number(values.cycle_s), offset_s: Number(values.offset_s),
          splits_s: splits, duration_s, reason: values.reason.trim() };
      } else {
        body = { action, duration_s, reason: values.reason.trim() };
        if (action !== "flash") body.phase = Number(values.phase);
      }
    }
    try {
      await api(path, { method: "POST", body });
      toast(action === "release" ? t("ix.released", { id }) : t("ix.done", { action: t(`act.${action}`), id }), "ok");
    } catch (err) {
      const msg = `${t("ix.action_failed", { action: t(`act.${action}`) })}: ${errorText(err)}`;
      actionError.textContent = msg;
      actionError.dataset.status = String(err.status || "");
      toast(msg, "error");
    }
    try { await refresh(); } catch (err) { status.textContent = errorText(err); }
  }

  const stopLive = every(LIVE_MS, refresh, status);
  const stopHistory = every(HISTORY_MS, loadHistory);
  return () => { stopLive(); stopHistory(); };
}

export default {
  id: "intersection",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: false,
  strings,
  mount(el, params) {
    useCss("/ui/pages/intersection.css");
    const id = params[0];
    return id ? mountIntersection(el, id) : mountList(el);
  },
};
