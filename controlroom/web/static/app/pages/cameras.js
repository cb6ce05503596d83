// Cameras: every camera's latest snapshot, grouped by the intersection it watches, with its
// state (online, offline, stale, not reported), tamper and clock offset; for the selected
// camera a PTZ pad (press and hold to move, release to stop), its presets (go to, store the
// current view), "take a snapshot now" and the status of the commands sent. Commands go
// through POST /api/cameras/{id}/ptz and /snapshot (operator, supervisor, admin; the server
// decides, this page only hides what a role may not do).
import {
  api, clear, errorText, every, fmtDateTime, fmtNumber, fmtTime, h, hasRole, t, toast, useCss,
} from "../core.js";

const GRID_REFRESH_MS = 5000; // statuses and grid snapshots
const DETAIL_REFRESH_MS = 3000; // the selected camera: position, presets, commands, snapshot
const MOVE_TIMEOUT_S = 4; // a held button's move lasts this long unless renewed…
const MOVE_RENEW_MS = 3000; // …and is renewed this often while the button is held
const MOVE_ROLES = ["operator", "supervisor", "admin"];

const strings = {
  id: {
    "cameras.nav": "Kamera", "cameras.title": "Kamera CCTV",
    "cameras.none": "Belum ada kamera yang dilaporkan oleh edge.",
    "cameras.area": "Simpang {id}", "cameras.no_area": "Tanpa simpang",
    "cameras.state.online": "Daring", "cameras.state.offline": "Luring",
    "cameras.state.stale": "Status usang", "cameras.state.unknown": "Belum melapor",
    "cameras.tamper.blur": "Kabur", "cameras.tamper.blackout": "Gelap/tertutup",
    "cameras.tamper.moved": "Bergeser", "cameras.tamper.frozen": "Membeku",
    "cameras.alarms": "{n} alarm", "cameras.clock": "Selisih jam {s} s",
    "cameras.no_snapshot": "Belum ada snapshot", "cameras.snapshot_at": "Snapshot {time}",
    "cameras.select": "Pilih kamera di kiri untuk melihat rincian dan menggerakkan PTZ.",
    "cameras.ptz": "Kendali PTZ", "cameras.ptz_help": "Tekan dan tahan untuk menggerakkan; lepas untuk berhenti.",
    "cameras.no_ptz": "Kamera ini tetap (tanpa PTZ).",
    "cameras.view_only": "Peran Anda hanya dapat melihat; menggerakkan kamera: operator, supervisor, admin.",
    "cameras.up": "Atas", "cameras.down": "Bawah", "cameras.left": "Kiri", "cameras.right": "Kanan",
    "cameras.zoom_in": "Perbesar", "cameras.zoom_out": "Perkecil", "cameras.stop": "Berhenti",
    "cameras.speed": "Kecepatan", "cameras.position": "Posisi",
    "cameras.pos": "pan {pan} · tilt {tilt} · zoom {zoom}",
    "cameras.presets": "Preset", "cameras.no_presets": "Belum ada preset.",
    "cameras.goto": "Tuju", "cameras.preset_name": "Nama preset baru",
    "cameras.preset_set": "Simpan posisi ini sebagai preset",
    "cameras.snapshot_now": "Ambil snapshot sekarang",
    "cameras.commands": "Perintah terakhir", "cameras.no_commands": "Belum ada perintah.",
    "cameras.cmd.sent": "terkirim", "cameras.cmd.accepted": "diterima",
    "cameras.cmd.applied": "dijalankan", "cameras.cmd.rejected": "ditolak",
    "cameras.cmd.unanswered": "tak dijawab",
    "cameras.kind.ptz_move": "Gerak", "cameras.kind.ptz_stop": "Berhenti",
    "cameras.kind.ptz_goto": "Ke posisi", "cameras.kind.preset_goto": "Ke preset",
    "cameras.kind.preset_set": "Simpan preset", "cameras.kind.snapshot": "Snapshot",
    "cameras.col.when": "Waktu", "cameras.col.what": "Perintah", "cameras.col.who": "Oleh",
    "cameras.col.status": "Status", "cameras.col.reason": "Keterangan",
    "cameras.rate_limited": "Terlalu banyak perintah: {msg}",
    "cameras.last_cmd": "Perintah {kind}: {status}",
    "cameras.model": "Model", "cameras.firmware": "Firmware", "cameras.fps": "FPS",
    "cameras.edge": "Edge", "cameras.last_status": "Status terakhir", "cameras.error": "Galat",
    "cameras.zones": "Zona deteksi", "cameras.clock_offset": "Selisih jam kamera", "cameras.open_alarms": "Alarm terbuka",
    "cameras.see_alarms": "Lihat di halaman Alarm",
  },
  en: {
    "cameras.nav": "Cameras", "cameras.title": "CCTV cameras",
    "cameras.none": "No camera has been reported by an edge yet.",
    "cameras.area": "Intersection {id}", "cameras.no_area": "No intersection",
    "cameras.state.online": "Online", "cameras.state.offline": "Offline",
    "cameras.state.stale": "Status stale", "cameras.state.unknown": "Not reported yet",
    "cameras.tamper.blur": "Blurred", "cameras.tamper.blackout": "Dark/covered",
    "cameras.tamper.moved": "Moved", "cameras.tamper.frozen": "Frozen",
    "cameras.alarms": "{n} alarm(s)", "cameras.clock": "Clock off by {s} s",
    "cameras.no_snapshot": "No snapshot yet", "cameras.snapshot_at": "Snapshot {time}",
    "cameras.select": "Pick a camera on the left for its details and PTZ control.",
    "cameras.ptz": "PTZ control", "cameras.ptz_help": "Press and hold to move; release to stop.",
    "cameras.no_ptz": "This is a fixed camera (no PTZ).",
    "cameras.view_only": "Your role may only watch; moving cameras: operator, supervisor, admin.",
    "cameras.up": "Up", "cameras.down": "Down", "cameras.left": "Left", "cameras.right": "Right",
    "cameras.zoom_in": "Zoom in", "cameras.zoom_out": "Zoom out", "cameras.stop": "Stop",
    "cameras.speed": "Speed", "cameras.position": "Position",
    "cameras.pos": "pan {pan} · tilt {tilt} · zoom {zoom}",
    "cameras.presets": "Presets", "cameras.no_presets": "No presets yet.",
    "cameras.goto": "Go", "cameras.preset_name": "New preset name",
    "cameras.preset_set": "Store this position as a preset",
    "cameras.snapshot_now": "Take a snapshot now",
    "cameras.commands": "Recent commands", "cameras.no_commands": "No commands yet.",
    "cameras.cmd.sent": "sent", "cameras.cmd.accepted": "accepted",
    "cameras.cmd.applied": "applied", "cameras.cmd.rejected": "rejected",
    "cameras.cmd.unanswered": "unanswered",
    "cameras.kind.ptz_move": "Move", "cameras.kind.ptz_stop": "Stop",
    "cameras.kind.ptz_goto": "Go to position", "cameras.kind.preset_goto": "Go to preset",
    "cameras.kind.preset_set": "Store preset", "cameras.kind.snapshot": "Snapshot",
    "cameras.col.when": "When", "cameras.col.what": "Command", "cameras.col.who": "By",
    "cameras.col.status": "Status", "cameras.col.reason": "Note",
    "cameras.rate_limited": "Too many commands: {msg}",
    "cameras.last_cmd": "Command {kind}: {status}",
    "cameras.model": "Model", "cameras.firmware": "Firmware", "cameras.fps": "FPS",
    "cameras.edge": "Edge", "cameras.last_status": "Last status", "cameras.error": "Error",
    "cameras.zones": "Detection zones", "cameras.clock_offset": "Camera clock offset", "cameras.open_alarms": "Open alarms",
    "cameras.see_alarms": "See the Alarms page",
  },
};

const STATE_BADGE = { online: "ok", offline: "bad", stale: "warn", unknown: "off" };
const CMD_BADGE = { sent: "off", accepted: "warn", applied: "ok", rejected: "bad", unanswered: "bad" };
// Pad buttons: [name, label key, pan, tilt, zoom, grid area]
const PAD = [
  ["up", "cameras.up", 0, 1, 0, "u", "▲"], ["left", "cameras.left", -1, 0, 0, "l", "◀"],
  ["right", "cameras.right", 1, 0, 0, "r", "▶"], ["down", "cameras.down", 0, -1, 0, "d", "▼"],
  ["zoom_in", "cameras.zoom_in", 0, 0, 1, "zi", "+"], ["zoom_out", "cameras.zoom_out", 0, 0, -1, "zo", "−"],
];

function stateBadge(cam) {
  return h("span", { class: `badge ${STATE_BADGE[cam.state] || "off"}`, "data-state": cam.state },
    t(`cameras.state.${cam.state}`));
}

function fmtPos(pos) {
  if (!pos) return "—";
  return t("cameras.pos", { pan: fmtNumber(pos.pan, 2), tilt: fmtNumber(pos.tilt, 2),
    zoom: fmtNumber(pos.zoom, 2) });
}

function mount(el, params) {
  useCss("/ui/pages/cameras.css");
  const mayMove = hasRole(...MOVE_ROLES);
  let selected = params[0] || null;
  let cameras = [];
  const status = h("p", { class: "error", role: "alert" });
  const grid = h("div", { class: "cam-groups", id: "camera-grid" });
  const detail = h("aside", { class: "cam-detail panel", id: "camera-detail" },
    h("p", { class: "muted" }, t("cameras.select")));
  el.append(h("div", { class: "row cam-head" }, h("h1", {}, t("cameras.title")),
    h("span", { class: "muted", id: "camera-count" })), status,
  h("div", { class: "cam-layout" }, grid, detail));

  const tiles = new Map(); // camera_id → {el, img, meta, shown, wanted, visible}
  // A tile's image is fetched only when its camera has a newer snapshot than the one shown,
  // and only while the tile is on screen: a wall of hundreds of cameras costs the server the
  // snapshots that changed on the screen's tiles, not all of them every refresh.
  const onScreen = "IntersectionObserver" in window ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const view = tiles.get(entry.target.dataset.camera);
      if (!view) continue;
      view.visible = entry.isIntersecting;
      if (view.visible) refreshTile(view, entry.target.dataset.camera);
    }
  }) : null;

  function refreshTile(view, id) {
    if (!view.visible || view.wanted === null || view.wanted === view.shown) return;
    view.shown = view.wanted;
    reloadImage(view.img, id, () => { view.shown = undefined; }); // failed: try again later
  }
  let drawn = ""; // the drawn cameras' ids and areas, to know when to rebuild the grid
  let stopDetail = null;
  let detailView = null;

  function snapshotUrl(id) {
    return `/api/cameras/${encodeURIComponent(id)}/snapshot.jpg?t=${Date.now()}`;
  }

  /** Load the camera's snapshot off-screen and swap it in when it has arrived (no flicker). */
  function reloadImage(img, id, failed) {
    const next = new Image();
    next.onload = () => { img.src = next.src; img.classList.remove("missing"); };
    next.onerror = () => { img.classList.add("missing"); if (failed) failed(); };
    next.src = snapshotUrl(id);
  }

  function tileMeta(cam) {
    const offset = cam.clock_offset_s;
    return [
      h("strong", {}, cam.name || cam.camera_id),
      h("span", { class: "muted" }, cam.camera_id),
      h("div", { class: "row" }, stateBadge(cam),
        (cam.tampers || []).map((k) => h("span", { class: "badge bad", "data-tamper": k },
          t(`cameras.tamper.${k}`))),
        cam.open_alarms ? h("span", { class: "badge warn" }, t("cameras.alarms", { n: cam.open_alarms }))
          : null,
        offset !== null && offset !== undefined && Math.abs(offset) >= 1
          ? h("span", { class: `badge ${Math.abs(offset) > 10 ? "warn" : "off"}` },
            t("cameras.clock", { s: fmtNumber(offset, 1) })) : null)];
  }

  function tile(cam) {
    const img = h("img", { alt: cam.name || cam.camera_id, class: "missing" });
    const meta = h("div", { class: "cam-meta" });
    const el = h("button", { type: "button", class: "cam-tile", "data-camera": cam.camera_id,
      onclick: () => select(cam.camera_id) },
    h("div", { class: "cam-img" }, img, h("span", { class: "cam-noimg" }, t("cameras.no_snapshot"))),
    meta);
    tiles.set(cam.camera_id, { el, img, meta, shown: undefined, wanted: null, visible: !onScreen });
    if (onScreen) onScreen.observe(el);
    return el;
  }

  function renderGrid() {
    document.getElementById("camera-count").textContent = cameras.length ? `${cameras.length}` : "";
    const shape = cameras.map((c) => `${c.camera_id}@${c.intersection_id || ""}`).join(",");
    if (shape !== drawn) {
      drawn = shape;
      if (onScreen) onScreen.disconnect();
      clear(grid);
      tiles.clear();
      if (!cameras.length) { grid.append(h("p", { class: "empty" }, t("cameras.none"))); return; }
      const groups = new Map();
      for (const cam of cameras) {
        const key = cam.intersection_id || "";
        if (!groups.has(key)) groups.set(key, []);
        groups.get(key).push(cam);
      }
      const keys = [...groups.keys()].sort((a, b) => (a === "") - (b === "") || a.localeCompare(b));
      for (const key of keys) {
        const n = groups.get(key).length;
        grid.append(h("section", { class: "cam-group", "data-area": key,
          style: { flexGrow: String(n), flexBasis: `${n * 300}px` } },
          h("h2", {}, key ? t("cameras.area", { id: key }) : t("cameras.no_area")),
          h("div", { class: "cam-tiles" }, groups.get(key).map(tile))));
      }
    }
    for (const cam of cameras) {
      const view = tiles.get(cam.camera_id);
      clear(view.meta).append(...tileMeta(cam));
      const on = cam.camera_id === selected;
      view.el.classList.toggle("selected", on);
      view.el.setAttribute("aria-pressed", on ? "true" : "false");
      view.el.dataset.state = cam.state;
      view.wanted = cam.snapshot_at || null;
      refreshTile(view, cam.camera_id);
    }
  }

  async function loadGrid() {
    cameras = await api("/api/cameras");
    renderGrid();
    if (selected && !detailView && cameras.some((c) => c.camera_id === selected)) showDetail();
  }

  function select(id) {
    selected = id;
    history.replaceState(null, "", `#/cameras/${encodeURIComponent(id)}`);
    for (const [camId, view] of tiles) {
      const on = camId === id;
      view.el.classList.toggle("selected", on);
      view.el.setAttribute("aria-pressed", on ? "true" : "false");
    }
    showDetail();
  }

  // ---------------------------------------------------------------- the selected camera

  function showDetail() {
    if (stopDetail) stopDetail();
    if (detailView) detailView.release();
    detailView = cameraDetail(selected);
    clear(detail).append(detailView.el);
    stopDetail = every(DETAIL_REFRESH_MS, detailView.refresh, detailView.status);
  }

  function cameraDetail(id) {
    const path = `/api/cameras/${encodeURIComponent(id)}`;
    const statusLine = h("p", { class: "error", role: "alert" });
    const cmdLine = h("p", { class: "cam-cmd muted", id: "ptz-status", "aria-live": "polite" });
    const img = h("img", { class: "cam-big", alt: id, src: snapshotUrl(id) });
    const snapAt = h("span", { class: "muted", id: "snapshot-at" });
    const head = h("div", { class: "cam-detail-head" });
    const facts = h("dl", { class: "cam-facts" });
    const position = h("span", { id: "ptz-position", "data-pan": "", "data-tilt": "", "data-zoom": "" });
    const presetList = h("ul", { class: "cam-presets", id: "preset-list" });
    const commands = h("tbody", { id: "command-list" });
    const controls = h("div", { class: "cam-controls" });
    let cam = null;
    let lastSnap = null;
    let held = null; // {name, timer} while a pad button is held
    let speed = 0.5;

    async function send(body, what = "ptz") {
      try {
        const url = what === "snapshot" ? `${path}/snapshot?wait_s=3` : `${path}/ptz?wait_s=2`;
        const sent = await api(url, { method: "POST", body });
        showCommand(sent);
        if (sent.status === "sent" || sent.status === "accepted") follow(sent.cmd_id);
        return sent;
      } catch (err) {
        if (err.status === 429) {
          cmdLine.textContent = t("cameras.rate_limited", { msg: err.message });
          cmdLine.className = "cam-cmd error";
        } else {
          cmdLine.textContent = errorText(err);
          cmdLine.className = "cam-cmd error";
          toast(errorText(err), "error");
        }
        return null;
      }
    }

    function showCommand(c) {
      cmdLine.className = "cam-cmd";
      clear(cmdLine).append(
        t("cameras.last_cmd", { kind: t(`cameras.kind.${c.kind}`), status: "" }),
        h("span", { class: `badge ${CMD_BADGE[c.status] || "off"}`, "data-status": c.status,
          "data-cmd": c.cmd_id }, t(`cameras.cmd.${c.status}`)),
        c.reason ? ` — ${c.reason}` : "");
    }

    async function follow(cmdId) {
      // GET …/commands/{cmd_id}?wait_s: the server waits for a final ack (at most 5 s).
      try {
        const row = await api(`${path}/commands/${encodeURIComponent(cmdId)}?wait_s=4`);
        if (cmdLine.querySelector(`[data-cmd="${cmdId}"]`)) showCommand(row);
      } catch (err) { /* the next refresh shows the command list */ }
    }

    function move(name, pan, tilt, zoom) {
      const body = { action: "move", pan: pan * speed, tilt: tilt * speed, zoom: zoom * speed,
        timeout_s: MOVE_TIMEOUT_S };
      send(body);
      held = { name, timer: setInterval(() => send(body), MOVE_RENEW_MS) };
    }

    function stop() {
      if (!held) return;
      clearInterval(held.timer);
      held = null;
      send({ action: "stop" });
    }

    function padButton([name, label, pan, tilt, zoom, area, glyph]) {
      const b = h("button", { type: "button", class: "pad-btn", "data-ptz": name,
        style: { gridArea: area }, title: t(label), "aria-label": t(label) }, glyph);
      const start = (ev) => {
        ev.preventDefault();
        if (held) return;
        b.classList.add("held");
        if (ev.pointerId !== undefined) b.setPointerCapture?.(ev.pointerId);
        move(name, pan, tilt, zoom);
      };
      const end = () => { b.classList.remove("held"); stop(); };
      b.addEventListener("pointerdown", start);
      b.addEventListener("pointerup", end);
      b.addEventListener("pointercancel", end);
      b.addEventListener("lostpointercapture", end);
      b.addEventListener("keydown", (ev) => {
        if ((ev.key === " " || ev.key === "Enter") && !ev.repeat) start(ev);
      });
      b.addEventListener("keyup", (ev) => { if (ev.key === " " || ev.key === "Enter") end(); });
      b.addEventListener("blur", end);
      return b;
    }

    function renderControls() {
      clear(controls);
      if (!cam.ptz) { controls.append(h("p", { class: "muted" }, t("cameras.no_ptz"))); return; }
      if (!mayMove) {
        controls.append(h("p", { class: "muted", id: "view-only" }, t("cameras.view_only")));
        return;
      }
      const speedInput = h("input", { type: "range", min: 0.1, max: 1, step: 0.1, value: speed,
        id: "ptz-speed", oninput: (ev) => { speed = Number(ev.target.value); } });
      const presetName = h("input", { id: "preset-name", maxlength: 64,
        placeholder: t("cameras.preset_name"), "aria-label": t("cameras.preset_name") });
      controls.append(
        h("h2", {}, t("cameras.ptz")),
        h("p", { class: "muted" }, t("cameras.ptz_help")),
        h("div", { class: "row" },
          h("div", { class: "ptz-pad", id: "ptz-pad" }, PAD.map(padButton),
            h("button", { type: "button", class: "pad-btn stop", "data-ptz": "stop",
              style: { gridArea: "s" }, title: t("cameras.stop"), "aria-label": t("cameras.stop"),
              onclick: () => { if (held) stop(); else send({ action: "stop" }); } }, "■")),
          h("label", { class: "ptz-speed" }, h("span", {}, t("cameras.speed")), speedInput)),
        h("form", { class: "row preset-form", onsubmit: (ev) => {
          ev.preventDefault();
          const name = presetName.value.trim();
          if (!name) { presetName.focus(); return; }
          send({ action: "preset_set", name }).then((sent) => { if (sent) presetName.value = ""; });
        } }, presetName, h("button", { type: "submit", id: "preset-set" }, t("cameras.preset_set"))));
    }

    function renderPresets() {
      clear(presetList);
      const presets = cam.presets || [];
      if (!presets.length) { presetList.append(h("li", { class: "muted" }, t("cameras.no_presets"))); return; }
      for (const p of presets) {
        presetList.append(h("li", { "data-preset": p.token },
          h("span", {}, p.name || p.token), h("span", { class: "muted" }, ` #${p.token}`),
          mayMove && cam.ptz ? h("button", { type: "button", class: "secondary",
            "data-goto": p.token, onclick: () => send({ action: "preset_goto", preset_token: p.token }) },
          t("cameras.goto")) : null));
      }
    }

    function renderCommands() {
      clear(commands);
      if (!cam.commands.length) {
        commands.append(h("tr", {}, h("td", { colspan: 5, class: "muted" }, t("cameras.no_commands"))));
        return;
      }
      for (const c of cam.commands.slice(0, 8)) {
        commands.append(h("tr", { "data-cmd": c.cmd_id },
          h("td", {}, fmtTime(c.issued_at)), h("td", {}, t(`cameras.kind.${c.kind}`)),
          h("td", {}, c.user_name), h("td", {}, h("span", { class: `badge ${CMD_BADGE[c.status] || "off"}` },
            t(`cameras.cmd.${c.status}`))), h("td", { class: "muted" }, c.reason || "")));
      }
    }

    function renderFacts() {
      const fact = (k, v) => [h("dt", {}, t(k)), h("dd", {}, v)];
      const offset = cam.clock_offset_s;
      clear(facts).append(...[
        fact("cameras.position", position),
        fact("cameras.edge", cam.edge_id),
        fact("cameras.model", `${cam.model || "—"} · ${cam.firmware || "—"}`),
        fact("cameras.fps", fmtNumber(cam.fps, 1)),
        fact("cameras.last_status", fmtDateTime(cam.last_status_at)),
        fact("cameras.clock_offset", offset === null || offset === undefined ? "—"
          : `${offset > 0 ? "+" : ""}${fmtNumber(offset, 2)} s`),
        fact("cameras.zones", String(cam.zones)),
        cam.error ? fact("cameras.error", cam.error) : [],
        fact("cameras.open_alarms", cam.alarms.length
          ? h("div", {}, cam.alarms.map((a) => h("div", {},
            h("span", { class: `badge ${a.severity === "critical" ? "bad" : "warn"}` }, a.code), " ",
            a.text)), h("a", { href: "#/alarms" }, t("cameras.see_alarms")))
          : t("core.none"))].flat());
    }

    async function refresh() {
      const first = cam === null;
      cam = await api(path);
      const pos = cam.position;
      position.textContent = fmtPos(pos);
      if (pos) Object.assign(position.dataset, { pan: pos.pan, tilt: pos.tilt, zoom: pos.zoom });
      const taken = cam.snapshot ? cam.snapshot.taken_at : null;
      if (taken !== lastSnap) {
        lastSnap = taken;
        if (!first) reloadImage(img, id);
        const view = tiles.get(id);
        if (view && !first) { view.wanted = taken; refreshTile(view, id); }
      }
      snapAt.textContent = taken ? t("cameras.snapshot_at", { time: fmtTime(taken) }) : t("cameras.no_snapshot");
      clear(head).append(h("h2", {}, cam.name || cam.camera_id), h("span", { class: "muted" }, cam.camera_id),
        stateBadge(cam), ...(cam.tampers || []).map((k) => h("span", { class: "badge bad" }, t(`cameras.tamper.${k}`))));
      renderFacts();
      if (first) renderControls();
      renderPresets();
      renderCommands();
    }

    const el = h("div", { "data-camera": id },
      head, statusLine,
      h("div", { class: "cam-big-wrap" }, img),
      h("div", { class: "row" }, snapAt,
        mayMove ? h("button", { type: "button", id: "snapshot-now",
          onclick: () => send({}, "snapshot") }, t("cameras.snapshot_now")) : null),
      cmdLine, controls,
      h("h2", {}, t("cameras.presets")), presetList,
      facts,
      h("h2", {}, t("cameras.commands")),
      h("table", { class: "cam-commands" }, h("thead", {}, h("tr", {},
        ["when", "what", "who", "status", "reason"].map((k) => h("th", {}, t(`cameras.col.${k}`))))),
      commands));
    return { el, refresh, status: statusLine, release: () => { if (held) stop(); } };
  }

  const stopGrid = every(GRID_REFRESH_MS, loadGrid, status);
  return () => {
    stopGrid();
    if (onScreen) onScreen.disconnect();
    if (stopDetail) stopDetail();
    if (detailView) detailView.release();
  };
}

export default {
  id: "cameras",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: true,
  strings,
  mount,
};
