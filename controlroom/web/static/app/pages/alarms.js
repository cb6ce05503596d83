// Alarms: one list of the open traffic, camera and attendance machine alarms (GET
// /api/alarms/board), most severe first, with where, since when, the text in the reader's
// language and who acknowledged it; operators, supervisors and admins acknowledge with a
// comment (POST /api/alarms/{kind}/{id}/ack; the server decides and audits). The history tab
// shows every alarm active in a period, cleared ones with their clearing time, with filters.
import {
  api, clear, confirmDialog, errorText, every, fmtDateTime, h, hasRole, lang, site, t, toast,
  useCss,
} from "../core.js";

const REFRESH_MS = 5000;
const ACK_ROLES = ["operator", "supervisor", "admin"];
const SEVERITIES = ["critical", "warning", "info"];
const KINDS = ["traffic", "camera", "machine"];
const SEVERITY_BADGE = { critical: "bad", warning: "warn", info: "off" };
// Indonesia has no daylight saving time: each zone is a fixed offset.
const OFFSETS = { "Asia/Jakarta": "+07:00", "Asia/Pontianak": "+07:00", "Asia/Makassar": "+08:00",
  "Asia/Jayapura": "+09:00" };

// Titles per alarm code (controlroom/traffic/alarms.py, cctv/alarms.py, attendance/alarms.py).
const CODES = {
  edge_offline: ["Edge simpang terputus", "Intersection edge offline"],
  controller_offline: ["Pengendali sinyal tidak menjawab", "Signal controller not answering"],
  local_fallback: ["Pengendali memakai rencana lokal", "Controller on its local plan"],
  signal_flash: ["Lampu berkedip/padam tanpa perintah", "Signals flashing or dark unordered"],
  detector_fault: ["Detektor kendaraan rusak", "Vehicle detector fault"],
  layout_mismatch: ["Tata letak tidak cocok", "Layout mismatch"],
  command_rejected: ["Perintah ditolak edge", "Command rejected by the edge"],
  command_unanswered: ["Perintah tidak dijawab", "Command unanswered"],
  saturation: ["Simpang jenuh", "Intersection saturated"],
  camera_offline: ["Kamera luring", "Camera offline"],
  tamper_blur: ["Gambar kamera kabur", "Camera picture blurred"],
  tamper_blackout: ["Kamera gelap/tertutup", "Camera blacked out"],
  tamper_moved: ["Arah kamera bergeser", "Camera view moved"],
  tamper_frozen: ["Gambar kamera membeku", "Camera picture frozen"],
  clock_drift: ["Jam kamera menyimpang", "Camera clock drift"],
  machine_offline: ["Mesin absensi luring", "Attendance machine offline"],
  machine_capacity: ["Memori mesin absensi hampir penuh", "Attendance machine memory nearly full"],
  machine_clock_drift: ["Jam mesin absensi menyimpang", "Attendance machine clock drift"],
  machine_unknown_users: ["Absensi dari ID tak dikenal", "Punches by unknown user ids"],
};

const strings = {
  id: {
    "alarms.nav": "Alarm", "alarms.title": "Alarm",
    "alarms.tab.open": "Terbuka", "alarms.tab.history": "Riwayat",
    "alarms.kind": "Jenis", "alarms.kind.all": "Semua jenis", "alarms.kind.traffic": "Lalu lintas",
    "alarms.kind.camera": "Kamera", "alarms.kind.machine": "Mesin absensi",
    "alarms.severity": "Tingkat", "alarms.severity.all": "Semua tingkat",
    "alarms.severity.critical": "Kritis", "alarms.severity.warning": "Peringatan",
    "alarms.severity.info": "Info",
    "alarms.ack_filter": "Pengakuan", "alarms.ack.all": "Semua", "alarms.ack.no": "Belum diakui",
    "alarms.ack.yes": "Sudah diakui", "alarms.search": "Cari (sumber, teks, nama)",
    "alarms.from": "Dari tanggal", "alarms.to": "Sampai tanggal", "alarms.apply": "Tampilkan",
    "alarms.col.severity": "Tingkat", "alarms.col.source": "Sumber", "alarms.col.alarm": "Alarm",
    "alarms.col.since": "Sejak", "alarms.col.state": "Keadaan", "alarms.col.ack": "Pengakuan",
    "alarms.open": "Terbuka", "alarms.cleared": "Selesai {time}",
    "alarms.duration": "{d} lalu", "alarms.lasted": "berlangsung {d}",
    "alarms.acked_by": "Diakui {user} ({role}) {time}", "alarms.ack_btn": "Akui",
    "alarms.not_acked": "Belum diakui",
    "alarms.ack_title": "Akui alarm", "alarms.ack_comment": "Komentar (wajib): apa yang dilihat atau dilakukan",
    "alarms.ack_confirm": "Akui", "alarms.acked": "Alarm diakui.",
    "alarms.none_open": "Tidak ada alarm terbuka.", "alarms.none": "Tidak ada alarm pada pilihan ini.",
    "alarms.summary": "{open} terbuka · {critical} kritis · {unacked} belum diakui",
    "alarms.shown": "{n} alarm ditampilkan", "alarms.edge": "edge {id}",
    "alarms.view_only": "Peran Anda dapat melihat alarm; mengakui: operator, supervisor, admin.",
    "alarms.auto_clear": "Alarm selesai sendiri saat kondisinya pulih; pengakuan tidak menutup alarm.",
    "alarms.text_en_only": "Rincian sebagian alarm (dari sebelum ada terjemahannya) tertulis dalam bahasa Inggris.",
  },
  en: {
    "alarms.nav": "Alarms", "alarms.title": "Alarms",
    "alarms.tab.open": "Open", "alarms.tab.history": "History",
    "alarms.kind": "Kind", "alarms.kind.all": "All kinds", "alarms.kind.traffic": "Traffic",
    "alarms.kind.camera": "Camera", "alarms.kind.machine": "Attendance machine",
    "alarms.severity": "Severity", "alarms.severity.all": "All severities",
    "alarms.severity.critical": "Critical", "alarms.severity.warning": "Warning",
    "alarms.severity.info": "Info",
    "alarms.ack_filter": "Acknowledgement", "alarms.ack.all": "All", "alarms.ack.no": "Not acknowledged",
    "alarms.ack.yes": "Acknowledged", "alarms.search": "Search (source, text, name)",
    "alarms.from": "From date", "alarms.to": "To date", "alarms.apply": "Show",
    "alarms.col.severity": "Severity", "alarms.col.source": "Source", "alarms.col.alarm": "Alarm",
    "alarms.col.since": "Since", "alarms.col.state": "State", "alarms.col.ack": "Acknowledgement",
    "alarms.open": "Open", "alarms.cleared": "Cleared {time}",
    "alarms.duration": "{d} ago", "alarms.lasted": "lasted {d}",
    "alarms.acked_by": "Acknowledged by {user} ({role}) {time}", "alarms.ack_btn": "Acknowledge",
    "alarms.not_acked": "Not acknowledged",
    "alarms.ack_title": "Acknowledge alarm", "alarms.ack_comment": "Comment (required): what you saw or did",
    "alarms.ack_confirm": "Acknowledge", "alarms.acked": "Alarm acknowledged.",
    "alarms.none_open": "No open alarms.", "alarms.none": "No alarms match this selection.",
    "alarms.summary": "{open} open · {critical} critical · {unacked} not acknowledged",
    "alarms.shown": "{n} alarms shown", "alarms.edge": "edge {id}",
    "alarms.view_only": "Your role may view alarms; acknowledging: operator, supervisor, admin.",
    "alarms.auto_clear": "Alarms clear by themselves when their condition ends; acknowledging does not close them.",
    "alarms.text_en_only": "",
  },
};

export function alarmTitle(code) {
  const pair = CODES[code];
  return pair ? pair[lang() === "id" ? 0 : 1] : code;
}

/** The alarm's text in the reader's language (the English text where no Indonesian exists). */
export function alarmText(a) {
  return (lang() === "id" ? a.text_id || a.text_en : a.text_en || a.text_id) || a.text;
}

function duration(fromIso, toIso = null) {
  const s = Math.max(0, ((toIso ? new Date(toIso) : new Date()) - new Date(fromIso)) / 1000);
  const en = lang() === "en";
  if (s < 60) return `${Math.round(s)} ${en ? "s" : "dtk"}`;
  if (s < 3600) return `${Math.floor(s / 60)} ${en ? "min" : "mnt"}`;
  if (s < 86400) return `${Math.floor(s / 3600)} ${en ? "h" : "jam"} ${Math.floor((s % 3600) / 60)} ${en ? "min" : "mnt"}`;
  return `${Math.floor(s / 86400)} ${en ? "d" : "hari"} ${Math.floor((s % 86400) / 3600)} ${en ? "h" : "jam"}`;
}

function sourceCell(a) {
  const where = [];
  if (a.kind === "camera" && a.intersection_id) where.push(`Simpang ${a.intersection_id}`);
  if (a.kind === "machine" && a.office) where.push(a.office);
  if (a.kind === "traffic" && a.subject && a.code === "detector_fault") where.push(`detektor ${a.subject}`);
  if (a.edge_id) where.push(t("alarms.edge", { id: a.edge_id }));
  const link = a.kind === "camera" ? `#/cameras/${encodeURIComponent(a.source)}`
    : a.kind === "traffic" ? `#/intersection/${encodeURIComponent(a.source)}` : null;
  return h("td", {},
    h("div", { class: "muted" }, t(`alarms.kind.${a.kind}`)),
    link ? h("a", { href: link }, a.source) : h("strong", {}, a.source),
    a.source_name ? h("span", {}, ` — ${a.source_name}`) : null,
    where.length ? h("div", { class: "muted" }, where.join(" · ")) : null);
}

function mount(el, params) {
  useCss("/ui/pages/alarms.css");
  const mayAck = hasRole(...ACK_ROLES);
  let tab = params[0] === "history" ? "history" : "open";
  let rows = [];
  const status = h("p", { class: "error", role: "alert" });
  const summary = h("p", { class: "muted", id: "alarm-summary" });
  const body = h("tbody", { id: "alarm-rows" });
  const englishNote = h("span", { id: "alarm-en-note" });
  const filters = {
    kind: h("select", { id: "f-kind", "aria-label": t("alarms.kind") },
      h("option", { value: "" }, t("alarms.kind.all")),
      KINDS.map((k) => h("option", { value: k }, t(`alarms.kind.${k}`)))),
    severity: h("select", { id: "f-severity", "aria-label": t("alarms.severity") },
      h("option", { value: "" }, t("alarms.severity.all")),
      SEVERITIES.map((k) => h("option", { value: k }, t(`alarms.severity.${k}`)))),
    acked: h("select", { id: "f-acked", "aria-label": t("alarms.ack_filter") },
      h("option", { value: "" }, t("alarms.ack.all")), h("option", { value: "false" }, t("alarms.ack.no")),
      h("option", { value: "true" }, t("alarms.ack.yes"))),
    q: h("input", { id: "f-q", type: "search", placeholder: t("alarms.search"),
      "aria-label": t("alarms.search") }),
    from: h("input", { id: "f-from", type: "date", "aria-label": t("alarms.from") }),
    to: h("input", { id: "f-to", type: "date", "aria-label": t("alarms.to") }),
  };
  const tabs = h("div", { class: "tabs", role: "tablist" },
    ["open", "history"].map((k) => h("button", { type: "button", role: "tab", "data-tab": k,
      class: k === tab ? "active" : null, "aria-selected": k === tab ? "true" : "false",
      onclick: () => switchTab(k) }, t(`alarms.tab.${k}`))));
  const historyOnly = h("span", { class: "row history-only" },
    h("label", {}, h("span", {}, t("alarms.from")), filters.from),
    h("label", {}, h("span", {}, t("alarms.to")), filters.to));
  el.append(
    h("div", { class: "row" }, h("h1", {}, t("alarms.title")), tabs, summary),
    h("div", { class: "row alarm-filters" },
      h("label", {}, h("span", {}, t("alarms.kind")), filters.kind),
      h("label", {}, h("span", {}, t("alarms.severity")), filters.severity),
      h("label", {}, h("span", {}, t("alarms.ack_filter")), filters.acked),
      historyOnly,
      h("label", { class: "grow" }, h("span", {}, t("alarms.search")), filters.q)),
    h("p", { class: "muted" }, t("alarms.auto_clear"), " ", mayAck ? "" : t("alarms.view_only"), " ",
      englishNote),
    status,
    h("table", { class: "alarm-table", id: "alarm-table" },
      h("thead", {}, h("tr", {}, ["severity", "source", "alarm", "since", "state", "ack"].map((k) =>
        h("th", {}, t(`alarms.col.${k}`))))), body));

  function dayBound(date, end) {
    if (!date) return null;
    const offset = OFFSETS[site.timezone] || "+07:00";
    const d = new Date(`${date}T00:00:00${offset}`);
    if (end) d.setUTCDate(d.getUTCDate() + 1);
    return d.toISOString();
  }

  function query() {
    const p = new URLSearchParams({ state: tab === "open" ? "open" : "all", limit: "2000" });
    for (const k of ["kind", "severity", "acked"]) if (filters[k].value) p.set(k, filters[k].value);
    if (tab === "history") {
      const since = dayBound(filters.from.value, false);
      const until = dayBound(filters.to.value, true);
      if (since) p.set("since", since);
      if (until) p.set("until", until);
    }
    return `/api/alarms/board?${p}`;
  }

  async function load() {
    rows = await api(query());
    render();
  }

  function matches(a) {
    const q = filters.q.value.trim().toLowerCase();
    if (!q) return true;
    return [a.source, a.source_name, a.text, alarmTitle(a.code), a.code, a.edge_id, a.office,
      a.intersection_id, a.acked_by, a.ack_comment].some((v) => v && String(v).toLowerCase().includes(q));
  }

  function ackCell(a) {
    if (a.acked) {
      return h("td", { class: "acked", "data-acked-by": a.acked_by },
        h("div", {}, h("span", { class: "badge ok" }, "✓"), " ",
          t("alarms.acked_by", { user: a.acked_by, role: a.acked_role, time: fmtDateTime(a.acked_at) })),
        h("div", { class: "ack-comment" }, `“${a.ack_comment}”`));
    }
    return h("td", {},
      h("span", { class: "muted" }, t("alarms.not_acked")),
      mayAck ? h("button", { type: "button", class: "primary ack-btn", "data-ack": a.key,
        onclick: () => acknowledge(a) }, t("alarms.ack_btn")) : null);
  }

  function render() {
    const shown = rows.filter(matches);
    if (tab === "open") {
      shown.sort((x, y) => SEVERITIES.indexOf(x.severity) - SEVERITIES.indexOf(y.severity)
        || (x.acked - y.acked) || (y.opened_at < x.opened_at ? -1 : 1));
      summary.textContent = t("alarms.summary", { open: rows.length,
        critical: rows.filter((a) => a.severity === "critical").length,
        unacked: rows.filter((a) => !a.acked).length });
    } else {
      summary.textContent = t("alarms.shown", { n: shown.length });
    }
    // Traffic alarms stored before their texts were bilingual are English only: say so once.
    englishNote.textContent = lang() === "id" && shown.some((a) => !a.text_id)
      ? t("alarms.text_en_only") : "";
    clear(body);
    if (!shown.length) {
      body.append(h("tr", {}, h("td", { colspan: 6, class: "empty" },
        tab === "open" && !rows.length ? t("alarms.none_open") : t("alarms.none"))));
      return;
    }
    for (const a of shown) {
      const text = alarmText(a);
      body.append(h("tr", { "data-key": a.key, "data-state": a.state,
        class: `sev-${a.severity}${a.acked ? " is-acked" : ""}${a.state === "cleared" ? " is-cleared" : ""}` },
      h("td", {}, h("span", { class: `badge ${SEVERITY_BADGE[a.severity] || "off"}` },
        t(`alarms.severity.${a.severity}`))),
      sourceCell(a),
      h("td", {}, h("strong", {}, alarmTitle(a.code)), h("div", { class: "alarm-text",
        lang: a.text_id || lang() === "en" ? null : "en" }, text)),
      h("td", {}, fmtDateTime(a.opened_at), h("div", { class: "muted" },
        a.state === "open" ? t("alarms.duration", { d: duration(a.opened_at) })
          : t("alarms.lasted", { d: duration(a.opened_at, a.cleared_at) }))),
      h("td", {}, a.state === "open" ? h("span", { class: "badge bad", "data-alarm-state": "open" }, t("alarms.open"))
        : h("span", { class: "badge ok", "data-alarm-state": "cleared" },
          t("alarms.cleared", { time: fmtDateTime(a.cleared_at) }))),
      ackCell(a)));
    }
  }

  async function acknowledge(a) {
    const values = await confirmDialog({ title: t("alarms.ack_title"),
      text: `${alarmTitle(a.code)} — ${a.source}: ${alarmText(a)}`,
      fields: [{ name: "comment", label: t("alarms.ack_comment"), type: "textarea", required: true }],
      confirm: t("alarms.ack_confirm") });
    if (!values) return;
    try {
      await api(`/api/alarms/${a.kind}/${a.id}/ack`, { method: "POST",
        body: { comment: values.comment } });
      toast(t("alarms.acked"), "ok");
    } catch (err) {
      toast(errorText(err), "error");
    }
    await load().catch((err) => { status.textContent = errorText(err); });
  }

  let stop = null;
  function switchTab(next) {
    tab = next;
    history.replaceState(null, "", next === "history" ? "#/alarms/history" : "#/alarms");
    for (const b of tabs.querySelectorAll("button")) {
      const on = b.dataset.tab === tab;
      b.classList.toggle("active", on);
      b.setAttribute("aria-selected", on ? "true" : "false");
    }
    historyOnly.hidden = tab !== "history";
    restart();
  }
  function restart() {
    if (stop) stop();
    // the open list follows the street; the history is read when asked
    stop = tab === "open" ? every(REFRESH_MS, load, status) : every(60_000, load, status);
  }
  for (const k of ["kind", "severity", "acked", "from", "to"]) {
    filters[k].addEventListener("change", () => load().catch((err) => {
      status.textContent = errorText(err);
    }));
  }
  filters.q.addEventListener("input", render);
  historyOnly.hidden = tab !== "history";
  restart();
  return () => { if (stop) stop(); };
}

export default {
  id: "alarms",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: true,
  strings,
  mount,
};
