// Devices ("Perangkat"): the device inventory of every edge (GET /api/edges: what each edge
// announced at its birth), joined with what the control room knows of each device — signal
// controllers (/api/intersections), cameras (/api/cameras), attendance machines
// (/api/attendance/machines) — and their open alarms (/api/alarms/board): last contact,
// model and firmware, faults, errors. Filter by edge, kind, problems only, text.
import {
  api, clear, every, fmtDateTime, fmtNumber, h, t, useCss,
} from "../core.js";
import { alarmText, alarmTitle } from "./alarms.js";

const REFRESH_MS = 10000;
const KINDS = ["controller", "camera", "attendance", "detector", "simulated"];

const strings = {
  id: {
    "technicians.nav": "Perangkat", "technicians.title": "Perangkat per edge",
    "technicians.edge": "Edge", "technicians.edge.all": "Semua edge",
    "technicians.kind": "Jenis", "technicians.kind.all": "Semua jenis",
    "technicians.kind.controller": "Pengendali sinyal", "technicians.kind.camera": "Kamera",
    "technicians.kind.attendance": "Mesin absensi", "technicians.kind.detector": "Detektor",
    "technicians.kind.simulated": "Simulasi",
    "technicians.problems": "Hanya yang bermasalah", "technicians.search": "Cari perangkat",
    "technicians.online": "Daring", "technicians.offline": "Luring", "technicians.stale": "Usang",
    "technicians.unknown": "Belum melapor",
    "technicians.edge_since": "sejak {time}", "technicians.last_seen": "Status edge terakhir {time}",
    "technicians.versions": "Versi", "technicians.reason": "Alasan: {reason}",
    "technicians.col.device": "Perangkat", "technicians.col.kind": "Jenis",
    "technicians.col.where": "Lokasi", "technicians.col.model": "Model / firmware",
    "technicians.col.state": "Keadaan", "technicians.col.contact": "Kontak terakhir",
    "technicians.col.faults": "Gangguan / galat", "technicians.col.alarms": "Alarm terbuka",
    "technicians.none": "Tidak ada perangkat pada pilihan ini.",
    "technicians.no_edges": "Belum ada edge yang melapor.",
    "technicians.summary": "{edges} edge · {devices} perangkat · {offline} luring · {alarms} alarm terbuka",
    "technicians.det_faults": "Detektor rusak: {list}", "technicians.mode": "Mode {mode}",
    "technicians.tamper": "Tamper: {list}", "technicians.clock": "Selisih jam {s} s",
    "technicians.memory": "Memori log {pct} %", "technicians.users": "{n} pengguna",
    "technicians.not_in_inventory": "tidak ada di inventaris edge",
    "technicians.devices": "{n} perangkat",
  },
  en: {
    "technicians.nav": "Devices", "technicians.title": "Devices per edge",
    "technicians.edge": "Edge", "technicians.edge.all": "All edges",
    "technicians.kind": "Kind", "technicians.kind.all": "All kinds",
    "technicians.kind.controller": "Signal controller", "technicians.kind.camera": "Camera",
    "technicians.kind.attendance": "Attendance machine", "technicians.kind.detector": "Detector",
    "technicians.kind.simulated": "Simulated",
    "technicians.problems": "Problems only", "technicians.search": "Search devices",
    "technicians.online": "Online", "technicians.offline": "Offline", "technicians.stale": "Stale",
    "technicians.unknown": "Not reported yet",
    "technicians.edge_since": "since {time}", "technicians.last_seen": "Edge state last reported {time}",
    "technicians.versions": "Versions", "technicians.reason": "Reason: {reason}",
    "technicians.col.device": "Device", "technicians.col.kind": "Kind",
    "technicians.col.where": "Where", "technicians.col.model": "Model / firmware",
    "technicians.col.state": "State", "technicians.col.contact": "Last contact",
    "technicians.col.faults": "Faults / errors", "technicians.col.alarms": "Open alarms",
    "technicians.none": "No devices match this selection.",
    "technicians.no_edges": "No edge has reported yet.",
    "technicians.summary": "{edges} edges · {devices} devices · {offline} offline · {alarms} open alarms",
    "technicians.det_faults": "Detector faults: {list}", "technicians.mode": "Mode {mode}",
    "technicians.tamper": "Tamper: {list}", "technicians.clock": "Clock off by {s} s",
    "technicians.memory": "Log memory {pct} %", "technicians.users": "{n} users",
    "technicians.not_in_inventory": "not in the edge's inventory",
    "technicians.devices": "{n} devices",
  },
};

const STATE_BADGE = { online: "ok", offline: "bad", stale: "warn", unknown: "off" };

/** One row per device: the edge's inventory entry joined with what the control room knows. */
function devicesOf(data) {
  const byIntersection = new Map(data.intersections.map((i) => [i.intersection_id, i]));
  const cameras = new Map(data.cameras.map((c) => [c.camera_id, c]));
  const machines = new Map(data.machines.map((m) => [m.device_sn, m]));
  const alarms = new Map(); // "kind:source" → [alarm]
  for (const a of data.alarms) {
    const key = `${a.kind}:${a.source}`;
    if (!alarms.has(key)) alarms.set(key, []);
    alarms.get(key).push(a);
  }
  const rows = [];
  const seen = new Set();
  const add = (edge, d, listed) => {
    const row = { edge_id: edge.edge_id, edge_online: edge.online, device_id: d.device_id,
      kind: d.kind, model: d.model || "", firmware: d.firmware || "",
      intersection_id: d.intersection_id || null, listed, where: d.intersection_id || "",
      state: edge.online ? "unknown" : "offline", contact: null, faults: [], alarms: [] };
    if (d.kind === "controller") {
      const i = byIntersection.get(d.intersection_id);
      if (i) {
        row.state = i.online ? "online" : "offline";
        row.contact = i.last_ts;
        if (i.mode) row.info = t("technicians.mode", { mode: i.mode });
        const bad = (i.det_fault || []).map((f, k) => (f ? k : null)).filter((k) => k !== null);
        if (bad.length) row.faults.push(t("technicians.det_faults", { list: bad.join(", ") }));
      }
      row.alarms = alarms.get(`traffic:${d.intersection_id}`) || [];
    } else if (d.kind === "camera") {
      const c = cameras.get(d.device_id);
      if (c) {
        row.state = c.state;
        row.contact = c.last_status_at;
        row.model = c.model || row.model;
        row.firmware = c.firmware || row.firmware;
        row.where = [c.intersection_id, c.name].filter(Boolean).join(" — ");
        if (c.error) row.faults.push(c.error);
        if ((c.tampers || []).length) row.faults.push(t("technicians.tamper", { list: c.tampers.join(", ") }));
        if (c.clock_offset_s !== null && Math.abs(c.clock_offset_s) >= 1) {
          row.faults.push(t("technicians.clock", { s: fmtNumber(c.clock_offset_s, 1) }));
        }
      }
      row.alarms = alarms.get(`camera:${d.device_id}`) || [];
    } else if (d.kind === "attendance") {
      const m = machines.get(d.device_id);
      if (m) {
        row.state = m.online ? "online" : "offline";
        row.contact = m.last_seen;
        row.model = [m.name, m.platform].filter(Boolean).join(" · ") || row.model;
        row.firmware = m.firmware || row.firmware;
        row.where = m.office || "";
        if (m.last_error) row.faults.push(m.last_error);
        if (m.clock_drift_s !== null && Math.abs(m.clock_drift_s) >= 1) {
          row.faults.push(t("technicians.clock", { s: fmtNumber(m.clock_drift_s, 1) }));
        }
        if (m.punches_used_pct !== null) {
          row.info = `${t("technicians.memory", { pct: fmtNumber(m.punches_used_pct, 1) })} · ${t("technicians.users", { n: m.users ?? "—" })}`;
        }
      }
      row.alarms = alarms.get(`machine:${d.device_id}`) || [];
    }
    if (!edge.online) row.state = "offline";
    seen.add(`${d.kind}:${d.device_id}`);
    rows.push(row);
  };
  const edges = new Map(data.edges.map((e) => [e.edge_id, e]));
  for (const e of data.edges) for (const d of e.inventory || []) add(e, d, true);
  // Devices the control room knows that no edge lists now (moved, or an old inventory).
  for (const c of data.cameras) {
    if (seen.has(`camera:${c.camera_id}`)) continue;
    add(edges.get(c.edge_id) || { edge_id: c.edge_id, online: c.edge_online !== false },
      { device_id: c.camera_id, kind: "camera", intersection_id: c.intersection_id }, false);
  }
  for (const m of data.machines) {
    if (seen.has(`attendance:${m.device_sn}`)) continue;
    add(edges.get(m.edge_id) || { edge_id: m.edge_id, online: m.online },
      { device_id: m.device_sn, kind: "attendance" }, false);
  }
  return rows;
}

function mount(el) {
  useCss("/ui/pages/technicians.css");
  const status = h("p", { class: "error", role: "alert" });
  const summary = h("p", { class: "muted", id: "device-summary" });
  const list = h("div", { id: "edge-list" });
  const edgeFilter = h("select", { id: "f-edge", "aria-label": t("technicians.edge") },
    h("option", { value: "" }, t("technicians.edge.all")));
  const kindFilter = h("select", { id: "f-kind", "aria-label": t("technicians.kind") },
    h("option", { value: "" }, t("technicians.kind.all")),
    KINDS.map((k) => h("option", { value: k }, t(`technicians.kind.${k}`))));
  const problems = h("input", { type: "checkbox", id: "f-problems" });
  const search = h("input", { type: "search", id: "f-q", placeholder: t("technicians.search"),
    "aria-label": t("technicians.search") });
  el.append(h("div", { class: "row" }, h("h1", {}, t("technicians.title")), summary),
    h("div", { class: "row dev-filters" },
      h("label", {}, h("span", {}, t("technicians.edge")), edgeFilter),
      h("label", {}, h("span", {}, t("technicians.kind")), kindFilter),
      h("label", { class: "inline" }, problems, h("span", {}, t("technicians.problems"))),
      h("label", { class: "grow" }, h("span", {}, t("technicians.search")), search)),
    status, list);

  let data = null;

  async function load() {
    const [edges, intersections, cameras, machines, alarms] = await Promise.all([
      api("/api/edges"), api("/api/intersections"), api("/api/cameras"),
      api("/api/attendance/machines").catch((err) => (err.status === 404 ? [] : Promise.reject(err))),
      api("/api/alarms/board?state=open&limit=5000")]);
    data = { edges, intersections, cameras, machines, alarms };
    const known = new Set([...edgeFilter.options].map((o) => o.value));
    for (const e of edges) {
      if (!known.has(e.edge_id)) edgeFilter.append(h("option", { value: e.edge_id }, e.edge_id));
    }
    render();
  }

  function problem(row) {
    return row.state !== "online" || row.faults.length > 0 || row.alarms.length > 0;
  }

  function render() {
    if (!data) return;
    const rows = devicesOf(data);
    const q = search.value.trim().toLowerCase();
    const shown = rows.filter((r) => (!edgeFilter.value || r.edge_id === edgeFilter.value)
      && (!kindFilter.value || r.kind === kindFilter.value) && (!problems.checked || problem(r))
      && (!q || [r.device_id, r.where, r.model, r.firmware, r.edge_id, ...r.faults]
        .some((v) => v && String(v).toLowerCase().includes(q))));
    summary.textContent = t("technicians.summary", { edges: data.edges.length, devices: rows.length,
      offline: rows.filter((r) => r.state === "offline").length, alarms: data.alarms.length });
    clear(list);
    if (!data.edges.length) { list.append(h("p", { class: "empty" }, t("technicians.no_edges"))); return; }
    const edgeIds = [...new Set([...data.edges.map((e) => e.edge_id), ...rows.map((r) => r.edge_id)])];
    let any = false;
    for (const edgeId of edgeIds) {
      if (edgeFilter.value && edgeId !== edgeFilter.value) continue;
      const mine = shown.filter((r) => r.edge_id === edgeId);
      if (!mine.length && (kindFilter.value || problems.checked || q)) continue;
      any = any || mine.length > 0;
      const e = data.edges.find((x) => x.edge_id === edgeId);
      list.append(edgePanel(e, edgeId, mine));
    }
    if (!any) list.append(h("p", { class: "empty" }, t("technicians.none")));
  }

  function edgePanel(e, edgeId, rows) {
    const online = e ? e.online : null;
    return h("section", { class: "panel edge-panel", "data-edge": edgeId },
      h("div", { class: "row edge-head" },
        h("h2", {}, edgeId),
        h("span", { class: `badge ${online ? "ok" : online === false ? "bad" : "off"}`, "data-edge-state": online ? "online" : "offline" },
          online ? t("technicians.online") : online === false ? t("technicians.offline") : t("technicians.unknown")),
        e ? h("span", { class: "muted" }, t("technicians.edge_since", { time: fmtDateTime(e.status_since) })) : null,
        e ? h("span", { class: "muted" }, t("technicians.last_seen", { time: fmtDateTime(e.last_seen) })) : null,
        e && e.versions ? h("span", { class: "muted" }, `${t("technicians.versions")}: ${Object.entries(e.versions).map(([k, v]) => `${k} ${v}`).join(", ")}`) : null,
        e && e.reason ? h("span", { class: "muted" }, t("technicians.reason", { reason: e.reason })) : null,
        h("span", { class: "muted grow-right" }, t("technicians.devices", { n: rows.length }))),
      rows.length ? h("table", { class: "dev-table" },
        h("thead", {}, h("tr", {}, ["device", "kind", "where", "model", "state", "contact", "faults", "alarms"]
          .map((k) => h("th", {}, t(`technicians.col.${k}`))))),
        h("tbody", {}, rows.map(deviceRow))) : h("p", { class: "muted" }, t("technicians.none")));
  }

  function deviceRow(r) {
    return h("tr", { "data-device": r.device_id, "data-kind": r.kind, "data-state": r.state },
      h("td", {}, h("strong", {}, r.device_id),
        r.listed ? null : h("div", { class: "muted" }, t("technicians.not_in_inventory"))),
      h("td", {}, t(`technicians.kind.${r.kind}`)),
      h("td", {}, r.kind === "camera" ? h("a", { href: `#/cameras/${encodeURIComponent(r.device_id)}` }, r.where || "—")
        : r.kind === "controller" && r.intersection_id
          ? h("a", { href: `#/intersection/${encodeURIComponent(r.intersection_id)}` }, r.where) : r.where || "—"),
      h("td", {}, r.model || "—", h("div", { class: "muted" }, r.firmware || "—")),
      h("td", {}, h("span", { class: `badge ${STATE_BADGE[r.state] || "off"}` }, t(`technicians.${r.state}`))),
      h("td", {}, fmtDateTime(r.contact)),
      h("td", {}, r.faults.length ? r.faults.map((f) => h("div", { class: "fault" }, f)) : "—",
        r.info ? h("div", { class: "muted" }, r.info) : null),
      h("td", {}, r.alarms.length ? r.alarms.map((a) => h("div", { class: "dev-alarm" },
        h("span", { class: `badge ${a.severity === "critical" ? "bad" : a.severity === "warning" ? "warn" : "off"}` },
          alarmTitle(a.code)), h("div", { class: "muted" }, alarmText(a)))) : "—"));
  }

  for (const f of [edgeFilter, kindFilter, problems]) f.addEventListener("change", render);
  search.addEventListener("input", render);
  return every(REFRESH_MS, load, status);
}

export default {
  id: "technicians",
  roles: ["technician", "supervisor", "admin"],
  nav: true,
  strings,
  mount,
};
