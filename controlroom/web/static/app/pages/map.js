// The wall map: every intersection of the layout drawn from its coordinates as an SVG
// schematic, coloured by where its signal timing comes from, with its degree of saturation as a
// ring and its cameras beside it, kept live from /api/live. The SVG is built once per layout
// and then only the changed elements' attributes are updated (1,000 intersections stay smooth).
// window.kotaMapStats exposes what was applied and how late, for `kota bench dashboard`.
import { clear, fmtNumber, fmtTime, h, t, useCss } from "../core.js";
import { connectLive } from "../live.js";

const STATES = ["adaptive", "override", "local_fallback", "flash", "offline"];
const CAMERA_STATES = ["online", "stale", "unknown", "offline"];
const LABELS_UP_TO = 60; // more intersections than this: names on hover only
const SATURATED = 0.9; // degree of saturation the ring turns red at
const LATENCY_SAMPLES_MAX = 200000;

const strings = {
  id: {
    "map.nav": "Peta Kota", "map.title": "Peta simpang kota",
    "map.state.adaptive": "Adaptif", "map.state.override": "Diatur operator",
    "map.state.local_fallback": "Cadangan lokal", "map.state.flash": "Kedip / padam",
    "map.state.offline": "Luring",
    "map.state_help.adaptive": "Rencana dari inti adaptif ruang kontrol",
    "map.state_help.override": "Tahan, paksa fase atau rencana dari operator",
    "map.state_help.local_fallback": "Pengendali menjalankan rencana lokalnya",
    "map.state_help.flash": "Lampu berkedip kuning atau padam",
    "map.state_help.offline": "Tidak ada telemetri baru, edge atau pengendali mati",
    "map.legend": "Keterangan", "map.load": "Derajat kejenuhan (DS)",
    "map.load_help": "Cincin: DS gerakan terpadat pada langkah rencana terakhir; merah ≥ {ds}",
    "map.cameras": "Kamera", "map.camera.online": "Daring", "map.camera.stale": "Usang",
    "map.camera.unknown": "Belum melapor", "map.camera.offline": "Luring",
    "map.last_update": "Pembaruan terakhir", "map.connecting": "Menyambung ke umpan langsung…",
    "map.lost": "Koneksi terputus — mencoba menyambung lagi. Peta menampilkan keadaan terakhir.",
    "map.live": "Langsung", "map.no_layout": "Tata letak kota belum dikonfigurasi: tidak ada simpang untuk ditampilkan.",
    "map.intersections": "{n} simpang", "map.alarms": "Alarm terbuka", "map.signal": "Sinyal",
    "map.mode": "Mode", "map.updated": "Telemetri", "map.hover": "Arahkan ke simpang untuk rinciannya; klik untuk membukanya.",
    "map.total": "Jumlah", "map.no_load": "belum dihitung", "map.details": "Rincian",
    "map.disconnected": "Terputus",
    "map.mode.central": "Terpusat", "map.mode.local_fixed": "Lokal, waktu tetap",
    "map.mode.local_actuated": "Lokal, teraktuasi", "map.mode.flash": "Kedip", "map.mode.off": "Padam",
  },
  en: {
    "map.nav": "City map", "map.title": "City intersection map",
    "map.state.adaptive": "Adaptive", "map.state.override": "Operator override",
    "map.state.local_fallback": "Local fallback", "map.state.flash": "Flash / dark",
    "map.state.offline": "Offline",
    "map.state_help.adaptive": "Plans from the control room's adaptive core",
    "map.state_help.override": "An operator's hold, forced phase or plan",
    "map.state_help.local_fallback": "The controller runs its own local plan",
    "map.state_help.flash": "Signals flashing yellow or dark",
    "map.state_help.offline": "No fresh telemetry, edge or controller down",
    "map.legend": "Legend", "map.load": "Degree of saturation (DS)",
    "map.load_help": "Ring: DS of the most loaded movement at the last plan step; red ≥ {ds}",
    "map.cameras": "Cameras", "map.camera.online": "Online", "map.camera.stale": "Stale",
    "map.camera.unknown": "Not reported yet", "map.camera.offline": "Offline",
    "map.last_update": "Last update", "map.connecting": "Connecting to the live feed…",
    "map.lost": "Connection lost — reconnecting. The map shows the last known state.",
    "map.live": "Live", "map.no_layout": "No city layout configured: no intersections to show.",
    "map.intersections": "{n} intersections", "map.alarms": "Open alarms", "map.signal": "Signal",
    "map.mode": "Mode", "map.updated": "Telemetry", "map.hover": "Point at an intersection for its details; click to open it.",
    "map.total": "Total", "map.no_load": "not computed yet", "map.details": "Details",
    "map.disconnected": "Disconnected",
    "map.mode.central": "Central", "map.mode.local_fixed": "Local, fixed time",
    "map.mode.local_actuated": "Local, actuated", "map.mode.flash": "Flash", "map.mode.off": "Off",
  },
};

function newStats() {
  const stats = {
    events: 0, fullSnapshots: 0, applied: 0, lastAppliedAt: null, lastDataTs: null,
    connected: false, intersections: 0, latenciesMs: [], serverMs: [],
    /** The latency samples since the last call: ms from telemetry time to the frame showing
     * it (total), and of that the part before the server sent it (server: event ts − telemetry ts). */
    take() {
      const out = { total: stats.latenciesMs, server: stats.serverMs };
      stats.latenciesMs = []; stats.serverMs = [];
      return out;
    },
  };
  return stats;
}

function mount(el) {
  useCss("/ui/pages/map.css");
  const stats = newStats();
  window.kotaMapStats = stats;
  const nodes = new Map(); // id → {g, load, badge, badgeText, title, label, data}
  const cameras = new Map(); // id → data
  let ids = ""; // the drawn layout's ids, to know when to redraw
  let geometry = null;
  let pending = new Map(); // id → record, applied in the next frame
  let frame = null;

  const banner = h("div", { id: "map-banner", class: "map-banner", role: "alert", hidden: true });
  const svg = h("svg:svg", { id: "map-svg", class: "map-svg", role: "img",
    "aria-label": t("map.title"), preserveAspectRatio: "xMidYMid meet" });
  const linkLayer = h("svg:g", { class: "links" });
  const nodeLayer = h("svg:g", { class: "nodes" });
  const camLayer = h("svg:g", { class: "cams" });
  svg.append(linkLayer, nodeLayer, camLayer);
  const empty = h("p", { class: "empty", id: "map-empty", hidden: true }, t("map.no_layout"));
  const countEls = {};
  const camCountEls = {};
  const lastEl = h("span", { id: "map-last-update" }, "—");
  const connEl = h("span", { id: "map-conn", class: "badge" }, t("map.connecting"));
  const totalEl = h("span", { id: "map-total", class: "muted" });
  const info = h("div", { id: "map-info", class: "map-info" }, h("p", { class: "muted" }, t("map.hover")));

  const side = h("aside", { class: "map-side panel" },
    h("h1", {}, t("map.title")),
    h("div", { class: "row" }, connEl, totalEl),
    h("p", { class: "muted" }, `${t("map.last_update")}: `, lastEl),
    h("h2", {}, t("map.legend")),
    h("ul", { class: "map-legend", id: "map-legend" }, STATES.map((s) => {
      countEls[s] = h("span", { class: "count", "data-count": s }, "0");
      return h("li", { "data-state": s, title: t(`map.state_help.${s}`) },
        h("span", { class: `swatch s-${s}` }), h("span", { class: "name" }, t(`map.state.${s}`)),
        countEls[s]);
    })),
    h("div", { class: "map-load-legend" },
      h("svg:svg", { viewBox: "-14 -14 28 28", width: 30, height: 30, "aria-hidden": "true" },
        h("svg:circle", { r: 9, class: "track" }),
        h("svg:circle", { r: 9, class: "load", "stroke-dasharray": `${0.7 * 2 * Math.PI * 9} 100`,
          transform: "rotate(-90)" }),
        h("svg:circle", { r: 6, class: "dot s-adaptive" })),
      h("div", {}, h("strong", {}, t("map.load")), h("br"),
        h("span", { class: "muted" }, t("map.load_help", { ds: fmtNumber(SATURATED, 1) })))),
    h("h2", {}, t("map.cameras")),
    h("ul", { class: "map-legend", id: "map-cam-legend" }, CAMERA_STATES.map((s) => {
      camCountEls[s] = h("span", { class: "count", "data-count": s }, "0");
      return h("li", { "data-camera-state": s },
        h("svg:svg", { viewBox: "-6 -5 12 10", width: 18, height: 15, "aria-hidden": "true" },
          h("svg:rect", { x: -5, y: -4, width: 7, height: 8, rx: 1, class: `cam c-${s}` }),
          h("svg:path", { d: "M2 -2 L5 -4 L5 4 L2 2 Z", class: `cam c-${s}` })),
        h("span", { class: "name" }, t(`map.camera.${s}`)), camCountEls[s]);
    })),
    h("h2", {}, t("map.details")),
    info);

  const wrap = h("div", { class: "map-wrap" }, side,
    h("div", { class: "map-stage" }, banner, empty, svg));
  el.append(wrap);
  // The map fills the window below the header, whatever the header's height (its menu wraps
  // on a laptop).
  const fit = () => {
    const top = wrap.getBoundingClientRect().top + window.scrollY;
    const main = wrap.closest("main");
    const below = main ? parseFloat(getComputedStyle(main).paddingBottom) || 0 : 0;
    wrap.style.height = `${Math.max(420, window.innerHeight - top - below - 2)}px`;
  };
  fit();
  window.addEventListener("resize", fit);

  // ------------------------------------------------------------------ drawing

  /** User units per screen pixel of the drawn SVG (0 until it has a size). */
  function unitsPerPx(vbW, vbH) {
    const rect = svg.getBoundingClientRect();
    if (!rect.width || !rect.height) return 0;
    return Math.max(vbW / rect.width, vbH / rect.height);
  }

  function layoutGeometry(records) {
    const xs = records.map((r) => r.x);
    const ys = records.map((r) => -r.y); // north up
    const minX = Math.min(...xs), maxX = Math.max(...xs), minY = Math.min(...ys), maxY = Math.max(...ys);
    const span = Math.max(maxX - minX, maxY - minY, 1);
    // Node size from the typical distance to the nearest neighbour (sampled for big cities).
    const step = Math.max(1, Math.floor(records.length / 200));
    const near = [];
    for (let i = 0; i < records.length; i += step) {
      let best = Infinity;
      for (let j = 0; j < records.length; j++) {
        if (j === i) continue;
        const d = Math.hypot(xs[i] - xs[j], ys[i] - ys[j]);
        if (d > 0 && d < best) best = d;
      }
      if (Number.isFinite(best)) near.push(best);
    }
    near.sort((a, b) => a - b);
    const typical = near.length ? near[Math.floor(near.length / 2)] : span;
    // Room around the city for the names (≈ 13 px text centred on their node) when drawn.
    const labelled = records.length <= LABELS_UP_TO;
    const marginX = labelled ? 130 : 24, marginY = labelled ? 45 : 24; // screen px
    const rect = svg.getBoundingClientRect();
    const w = maxX - minX || span, hgt = maxY - minY || span;
    const px = rect.width > 2 * marginX + 50 && rect.height > 2 * marginY + 50
      ? Math.max(w / (rect.width - 2 * marginX), hgt / (rect.height - 2 * marginY)) : span / 800;
    // At most ~18 px on screen (a small city must not draw huge discs), at least ~3 px.
    const r = Math.max(px * 3, Math.min(typical * 0.28, span * 0.045, px * 18));
    const padX = Math.max(r * 3.2, px * marginX), padY = Math.max(r * 3.2, px * marginY);
    return { r, pos: (rec) => [rec.x, -rec.y],
      viewBox: `${minX - padX} ${minY - padY} ${maxX - minX + 2 * padX} ${maxY - minY + 2 * padY}` };
  }

  function draw(records, links) {
    clear(linkLayer); clear(nodeLayer); clear(camLayer);
    nodes.clear();
    empty.hidden = records.length > 0;
    svg.toggleAttribute("hidden", records.length === 0);
    if (!records.length) return;
    geometry = layoutGeometry(records);
    const { r } = geometry;
    svg.setAttribute("viewBox", geometry.viewBox);
    svg.style.setProperty("--r", r);
    scaleText();
    const at = new Map(records.map((rec) => [rec.id, geometry.pos(rec)]));
    for (const [a, b] of links || []) {
      if (!at.has(a) || !at.has(b)) continue;
      const [x1, y1] = at.get(a), [x2, y2] = at.get(b);
      linkLayer.append(h("svg:line", { x1, y1, x2, y2, "stroke-width": r * 0.18 }));
    }
    const ringR = r * 1.3;
    const labels = records.length <= LABELS_UP_TO;
    const frag = document.createDocumentFragment();
    for (const rec of records) {
      const [x, y] = at.get(rec.id);
      const title = h("svg:title", {});
      const load = h("svg:circle", { r: ringR, class: "load", "stroke-width": r * 0.38,
        transform: "rotate(-90)", "stroke-dasharray": `0 ${2 * Math.PI * ringR}` });
      const badgeText = h("svg:text", { class: "badge-text", x: r * 1.05, y: r * 1.05 + r * 0.32,
        "font-size": r * 0.85, "text-anchor": "middle" });
      const badge = h("svg:g", { class: "alarm-badge", hidden: true },
        h("svg:circle", { cx: r * 1.05, cy: r * 1.05, r: r * 0.6 }), badgeText);
      const label = labels ? h("svg:text", { class: "label", y: -ringR - r * 0.5,
        "text-anchor": "middle" }, rec.name) : null;
      const g = h("svg:g", { class: "node", transform: `translate(${x} ${y})`,
        "data-id": rec.id, tabindex: labels ? 0 : null, role: "link" },
        title,
        h("svg:circle", { r: ringR, class: "track", "stroke-width": r * 0.38 }),
        load, h("svg:circle", { r, class: "dot" }), badge, label);
      frag.append(g);
      nodes.set(rec.id, { g, load, badge, badgeText, title, ringC: 2 * Math.PI * ringR, pos: [x, y],
        data: null });
    }
    nodeLayer.append(frag);
    drawCameras();
  }

  function update(rec, appliedAt) {
    const n = nodes.get(rec.id);
    if (!n) return;
    const before = n.data;
    n.data = rec;
    if (!before || before.state !== rec.state) n.g.setAttribute("data-state", rec.state);
    const ds = rec.load === null || rec.load === undefined ? null : rec.load;
    if (!before || before.load !== rec.load) {
      const frac = ds === null ? 0 : Math.max(0, Math.min(1, ds));
      n.load.setAttribute("stroke-dasharray", `${frac * n.ringC} ${n.ringC}`);
      n.load.classList.toggle("saturated", ds !== null && ds >= SATURATED);
      n.g.setAttribute("data-load", ds === null ? "" : String(ds));
    }
    if (!before || before.alarms !== rec.alarms) {
      n.badge.toggleAttribute("hidden", !rec.alarms);
      n.badgeText.textContent = rec.alarms > 99 ? "99+" : String(rec.alarms || "");
    }
    n.g.setAttribute("data-updated", rec.updated || "");
    if (!before || before.signal !== rec.signal) n.g.setAttribute("data-signal", rec.signal || "");
    if (rec.updated && appliedAt) {
      const lag = appliedAt - Date.parse(rec.updated);
      if (Number.isFinite(lag) && stats.latenciesMs.length < LATENCY_SAMPLES_MAX) {
        stats.latenciesMs.push(lag);
      }
    }
    if (hovered === rec.id) showInfo(rec.id);
  }

  /** Names stay ~13 px on screen whatever the city's size and the window's. */
  function scaleText() {
    if (!geometry) return;
    const [, , w, hgt] = geometry.viewBox.split(" ").map(Number);
    const u = unitsPerPx(w, hgt);
    if (u) svg.style.setProperty("--u", u);
  }
  const resize = new ResizeObserver(scaleText);
  resize.observe(svg);

  function drawCameras() {
    clear(camLayer);
    if (!geometry) return;
    const { r } = geometry;
    const perIntersection = new Map();
    for (const cam of cameras.values()) {
      const n = nodes.get(cam.intersection);
      if (!n) continue;
      const k = perIntersection.get(cam.intersection) || 0;
      perIntersection.set(cam.intersection, k + 1);
      const [x, y] = n.pos;
      const s = r * 0.15;
      const cx = x + r * 2.2 + k * r * 1.5, cy = y + r * 1.3;
      camLayer.append(h("svg:g", { class: "camera", "data-camera": cam.id, "data-state": cam.state,
        transform: `translate(${cx} ${cy}) scale(${s})` },
      h("svg:title", {}, `${t("map.cameras")}: ${cam.name} — ${t(`map.camera.${cam.state}`)}; ${
        t("map.alarms")} ${cam.alarms}`),
      h("svg:rect", { x: -5, y: -4, width: 7, height: 8, rx: 1 }),
      h("svg:path", { d: "M2 -2 L5 -4 L5 4 L2 2 Z" }),
      cam.alarms ? h("svg:circle", { cx: 4, cy: -5, r: 2.4, class: "cam-alarm" }) : null));
    }
  }

  function counts() {
    const c = Object.fromEntries(STATES.map((s) => [s, 0]));
    for (const n of nodes.values()) if (n.data) c[n.data.state] = (c[n.data.state] || 0) + 1;
    for (const s of STATES) countEls[s].textContent = fmtNumber(c[s]);
    totalEl.textContent = t("map.intersections", { n: fmtNumber(nodes.size) });
    const cc = Object.fromEntries(CAMERA_STATES.map((s) => [s, 0]));
    for (const cam of cameras.values()) cc[cam.state] = (cc[cam.state] || 0) + 1;
    for (const s of CAMERA_STATES) camCountEls[s].textContent = fmtNumber(cc[s]);
  }

  function stamp(ts) {
    if (!ts) return;
    stats.lastDataTs = ts;
    lastEl.textContent = fmtTime(ts);
    lastEl.setAttribute("data-ts", ts);
  }

  function applyPending() {
    frame = null;
    const appliedAt = Date.now();
    const batch = pending;
    pending = new Map();
    for (const rec of batch.values()) update(rec, appliedAt);
    stats.applied += batch.size;
    stats.lastAppliedAt = appliedAt;
    counts();
  }

  // ------------------------------------------------------------------ hover and click

  let hovered = null;
  function showInfo(id) {
    const n = nodes.get(id);
    if (!n || !n.data) return;
    const rec = n.data;
    const ds = rec.load;
    const camList = [...cameras.values()].filter((c) => c.intersection === id);
    clear(info).append(
      h("h3", {}, rec.name, " ", h("span", { class: "muted" }, rec.id)),
      h("p", {}, h("span", { class: `swatch s-${rec.state}` }), " ", t(`map.state.${rec.state}`)),
      h("dl", {},
        h("dt", {}, t("map.load")), h("dd", {}, ds === null || ds === undefined ? t("map.no_load") : fmtNumber(ds, 2)),
        h("dt", {}, t("map.signal")), h("dd", { class: "signal" }, rec.signal || "—"),
        h("dt", {}, t("map.mode")), h("dd", {}, rec.mode ? t(`map.mode.${rec.mode}`) : "—"),
        h("dt", {}, t("map.alarms")), h("dd", {}, String(rec.alarms)),
        h("dt", {}, t("map.updated")), h("dd", {}, fmtTime(rec.updated)),
        h("dt", {}, t("map.cameras")), h("dd", {}, camList.length
          ? camList.map((c) => `${c.name} (${t(`map.camera.${c.state}`)})`).join(", ") : "—")));
  }

  /** The tooltip is written when pointed at, not on every update (1,000 a second). */
  function tooltip(id) {
    const n = nodes.get(id);
    if (!n || !n.data) return;
    const rec = n.data;
    n.title.textContent = `${rec.name} (${rec.id}) — ${t(`map.state.${rec.state}`)}; DS ${
      rec.load === null || rec.load === undefined ? t("map.no_load") : fmtNumber(rec.load, 2)}; ${
      t("map.signal")} ${rec.signal || "—"}; ${t("map.alarms")} ${rec.alarms}`;
  }

  function nodeOf(target) {
    const g = target && target.closest ? target.closest("g.node") : null;
    return g ? g.getAttribute("data-id") : null;
  }
  svg.addEventListener("mouseover", (ev) => {
    const id = nodeOf(ev.target);
    if (id && id !== hovered) { hovered = id; showInfo(id); }
    if (id) tooltip(id);
  });
  svg.addEventListener("focusin", (ev) => {
    const id = nodeOf(ev.target);
    if (id) { hovered = id; showInfo(id); }
  });
  const open = (id) => { location.hash = `#/intersection/${encodeURIComponent(id)}`; };
  svg.addEventListener("click", (ev) => { const id = nodeOf(ev.target); if (id) open(id); });
  svg.addEventListener("keydown", (ev) => {
    const id = nodeOf(ev.target);
    if (id && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); open(id); }
  });

  // ------------------------------------------------------------------ the feed

  const live = connectLive({
    intersections(data) {
      stats.events += 1;
      if (data.full) {
        stats.fullSnapshots += 1;
        const key = data.intersections.map((r) => `${r.id}@${r.x},${r.y}`).join("|");
        if (key !== ids) {
          ids = key;
          pending = new Map();
          draw(data.intersections, data.links);
        }
        stats.intersections = data.intersections.length;
        empty.hidden = data.intersections.length > 0;
      }
      const sentAt = Date.parse(data.ts);
      for (const rec of data.intersections) {
        pending.set(rec.id, rec);
        if (!data.full && rec.updated && stats.serverMs.length < LATENCY_SAMPLES_MAX) {
          stats.serverMs.push(sentAt - Date.parse(rec.updated));
        }
      }
      stamp(data.ts);
      if (!frame) frame = requestAnimationFrame(applyPending);
    },
    cameras(data) {
      stats.events += 1;
      if (data.full) cameras.clear();
      for (const cam of data.cameras) cameras.set(cam.id, cam);
      stamp(data.ts);
      drawCameras();
      counts();
    },
    heartbeat() { /* keeps the connection's watchdog fed */ },
    state(s) {
      stats.connected = s === "open";
      banner.hidden = s !== "lost";
      banner.textContent = s === "lost" ? t("map.lost") : "";
      connEl.textContent = t(s === "open" ? "map.live" : s === "lost" ? "map.disconnected"
        : "map.connecting");
      connEl.className = `badge ${s === "open" ? "ok" : s === "lost" ? "bad" : "warn"}`;
      connEl.setAttribute("data-conn", s);
      el.classList.toggle("map-lost", s === "lost");
    },
  });

  return () => {
    live.close();
    resize.disconnect();
    window.removeEventListener("resize", fit);
    if (frame) cancelAnimationFrame(frame);
    if (window.kotaMapStats === stats) delete window.kotaMapStats;
  };
}

export default {
  id: "map",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: true,
  strings,
  mount,
};
