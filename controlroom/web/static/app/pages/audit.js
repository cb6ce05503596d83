// Audit log (supervisor, admin): operator actions (GET /api/audit: overrides, PTZ, alarm
// acknowledgements, log-ins, refusals) and changes to attendance records (GET
// /api/attendance/audit: leave, recomputes, SIMPEG syncs) — who, what, when, before and
// after, newest first, with filters. Read-only: nothing here changes anything.
import {
  api, clear, cityDate, errorText, fmtDateTime, fmtTime, h, site, t, useCss,
} from "../core.js";

const LIMITS = [200, 1000, 5000];
const OFFSETS = { "Asia/Jakarta": "+07:00", "Asia/Pontianak": "+07:00", "Asia/Makassar": "+08:00",
  "Asia/Jayapura": "+09:00" };

const strings = {
  id: {
    "audit.nav": "Log Audit", "audit.title": "Log audit",
    "audit.tab.ops": "Tindakan operator", "audit.tab.attendance": "Perubahan data kehadiran",
    "audit.who": "Pengguna", "audit.action": "Tindakan", "audit.outcome": "Hasil",
    "audit.all": "Semua", "audit.search": "Cari (sasaran, keterangan, nilai)",
    "audit.from": "Dari tanggal", "audit.to": "Sampai tanggal", "audit.limit": "Baris terakhir",
    "audit.reload": "Muat ulang", "audit.subject": "NIP / subjek",
    "audit.col.when": "Waktu", "audit.col.who": "Siapa", "audit.col.action": "Tindakan",
    "audit.col.target": "Sasaran", "audit.col.outcome": "Hasil", "audit.col.change": "Sebelum → sesudah",
    "audit.col.detail": "Keterangan",
    "audit.outcome.done": "Dilakukan", "audit.outcome.denied": "Ditolak", "audit.outcome.failed": "Gagal",
    "audit.none": "Tidak ada catatan pada pilihan ini.",
    "audit.shown": "{n} dari {total} catatan (terbaru dulu)",
    "audit.full": "Lengkap", "audit.before": "Sebelum", "audit.after": "Sesudah",
    "audit.nothing": "—",
  },
  en: {
    "audit.nav": "Audit log", "audit.title": "Audit log",
    "audit.tab.ops": "Operator actions", "audit.tab.attendance": "Attendance record changes",
    "audit.who": "User", "audit.action": "Action", "audit.outcome": "Outcome",
    "audit.all": "All", "audit.search": "Search (target, detail, values)",
    "audit.from": "From date", "audit.to": "To date", "audit.limit": "Latest rows",
    "audit.reload": "Reload", "audit.subject": "NIP / subject",
    "audit.col.when": "When", "audit.col.who": "Who", "audit.col.action": "Action",
    "audit.col.target": "Target", "audit.col.outcome": "Outcome", "audit.col.change": "Before → after",
    "audit.col.detail": "Detail",
    "audit.outcome.done": "Done", "audit.outcome.denied": "Denied", "audit.outcome.failed": "Failed",
    "audit.none": "No records match this selection.",
    "audit.shown": "{n} of {total} records (newest first)",
    "audit.full": "Full", "audit.before": "Before", "audit.after": "After",
    "audit.nothing": "—",
  },
};

const OUTCOME_BADGE = { done: "ok", denied: "bad", failed: "warn" };

function short(value) {
  if (value === null || value === undefined) return "∅";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** The keys whose values differ between before and after, as "key: before → after" lines. */
function changes(before, after) {
  if (before === null && after === null) return [];
  const isObj = (v) => v && typeof v === "object" && !Array.isArray(v);
  if (!isObj(before) || !isObj(after)) return [{ key: "", from: before, to: after }];
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => ({ key: k, from: before[k], to: after[k] }));
}

function changeCell(before, after) {
  const diff = changes(before, after);
  if (!diff.length) return h("td", { class: "muted" }, t("audit.nothing"));
  return h("td", { class: "audit-change" },
    diff.slice(0, 6).map((d) => h("div", {}, d.key ? h("span", { class: "muted" }, `${d.key}: `) : null,
      h("span", { class: "from" }, short(d.from)), " → ", h("span", { class: "to" }, short(d.to)))),
    h("details", {}, h("summary", {}, t("audit.full")),
      h("div", { class: "muted" }, t("audit.before")), h("pre", {}, JSON.stringify(before, null, 1)),
      h("div", { class: "muted" }, t("audit.after")), h("pre", {}, JSON.stringify(after, null, 1))));
}

function detailCell(detail) {
  if (detail === null || detail === undefined || detail === "") return h("td", { class: "muted" }, "—");
  if (typeof detail === "string") return h("td", { class: "audit-detail" }, detail);
  const entries = Object.entries(detail);
  return h("td", { class: "audit-detail" },
    entries.slice(0, 6).map(([k, v]) => h("div", {}, h("span", { class: "muted" }, `${k}: `), short(v))),
    entries.length > 6 ? h("details", {}, h("summary", {}, t("audit.full")),
      h("pre", {}, JSON.stringify(detail, null, 1))) : null);
}

function mount(el, params) {
  useCss("/ui/pages/audit.css");
  let tab = params[0] === "attendance" ? "attendance" : "ops";
  let rows = [];
  const status = h("p", { class: "error", role: "alert" });
  const summary = h("p", { class: "muted", id: "audit-summary" });
  const body = h("tbody", { id: "audit-rows" });
  const head = h("thead", {});
  const table = h("table", { class: "audit-table", id: "audit-table" }, head, body);
  const f = {
    who: h("select", { id: "f-who", "aria-label": t("audit.who") }),
    action: h("select", { id: "f-action", "aria-label": t("audit.action") }),
    outcome: h("select", { id: "f-outcome", "aria-label": t("audit.outcome") },
      h("option", { value: "" }, t("audit.all")),
      ["done", "denied", "failed"].map((o) => h("option", { value: o }, t(`audit.outcome.${o}`)))),
    q: h("input", { id: "f-q", type: "search", placeholder: t("audit.search"), "aria-label": t("audit.search") }),
    from: h("input", { id: "f-from", type: "date" }),
    to: h("input", { id: "f-to", type: "date" }),
    limit: h("select", { id: "f-limit", "aria-label": t("audit.limit") },
      LIMITS.map((n) => h("option", { value: n }, String(n)))),
  };
  const outcomeLabel = h("label", {}, h("span", {}, t("audit.outcome")), f.outcome);
  const tabs = h("div", { class: "tabs", role: "tablist" },
    ["ops", "attendance"].map((k) => h("button", { type: "button", role: "tab", "data-tab": k,
      class: k === tab ? "active" : null, "aria-selected": k === tab ? "true" : "false",
      onclick: () => switchTab(k) }, t(`audit.tab.${k}`))));
  el.append(
    h("div", { class: "row" }, h("h1", {}, t("audit.title")), tabs, summary),
    h("div", { class: "row audit-filters" },
      h("label", {}, h("span", {}, t("audit.who")), f.who),
      h("label", {}, h("span", {}, t("audit.action")), f.action),
      outcomeLabel,
      h("label", {}, h("span", {}, t("audit.from")), f.from),
      h("label", {}, h("span", {}, t("audit.to")), f.to),
      h("label", {}, h("span", {}, t("audit.limit")), f.limit),
      h("label", { class: "grow" }, h("span", {}, t("audit.search")), f.q),
      h("button", { type: "button", id: "audit-reload", onclick: () => load() }, t("audit.reload"))),
    status,
    table);

  function options(select, values) {
    const current = select.value;
    clear(select).append(h("option", { value: "" }, t("audit.all")),
      ...[...values].sort().map((v) => h("option", { value: v, selected: v === current }, v)));
  }

  /** Normalise both logs to one row shape. */
  function normal(r) {
    if (tab === "ops") {
      return { at: r.at, who: r.user_name, role: r.role, action: r.action, target: r.target,
        outcome: r.outcome, before: r.before, after: r.after, detail: r.detail };
    }
    // The payroll store writes changes as {before, after} (leave, days) or as
    // {changes: {field: [old, new]}} (employees from SIMPEG); both read as before → after.
    const d = r.detail && typeof r.detail === "object" ? r.detail : {};
    let before = null;
    let after = null;
    const rest = { ...d };
    if ("before" in d || "after" in d) {
      before = d.before ?? null;
      after = d.after ?? null;
      delete rest.before;
      delete rest.after;
    } else if (d.changes && typeof d.changes === "object") {
      before = {};
      after = {};
      for (const [k, v] of Object.entries(d.changes)) {
        [before[k], after[k]] = Array.isArray(v) ? v : [null, v];
      }
      delete rest.changes;
    }
    return { at: r.at, who: r.actor, role: null, action: r.action, target: r.subject,
      outcome: null, before, after, detail: Object.keys(rest).length ? rest : null };
  }

  async function load() {
    status.textContent = "";
    const loading = tab;
    const url = tab === "ops" ? `/api/audit?limit=${f.limit.value}`
      : `/api/attendance/audit?limit=${f.limit.value}`;
    try {
      const got = await api(url);
      if (loading !== tab) return; // the other tab was chosen meanwhile
      rows = got.map(normal);
    } catch (err) {
      status.textContent = `${t("core.load_failed")}: ${errorText(err)}`;
      rows = [];
    }
    options(f.who, new Set(rows.map((r) => r.who)));
    options(f.action, new Set(rows.map((r) => r.action)));
    render();
    table.dataset.tab = tab; // what the table shows now (tests and screen readers wait on it)
  }

  function bound(date, end) {
    if (!date) return null;
    const d = new Date(`${date}T00:00:00${OFFSETS[site.timezone] || "+07:00"}`);
    if (end) d.setUTCDate(d.getUTCDate() + 1);
    return d;
  }

  function render() {
    const q = f.q.value.trim().toLowerCase();
    const since = bound(f.from.value, false);
    const until = bound(f.to.value, true);
    const shown = rows.filter((r) => (!f.who.value || r.who === f.who.value)
      && (!f.action.value || r.action === f.action.value)
      && (tab !== "ops" || !f.outcome.value || r.outcome === f.outcome.value)
      && (!since || new Date(r.at) >= since) && (!until || new Date(r.at) < until)
      && (!q || [r.target, r.detail, r.before, r.after, r.who, r.action]
        .some((v) => v !== null && v !== undefined && short(v).toLowerCase().includes(q))));
    summary.textContent = t("audit.shown", { n: shown.length, total: rows.length });
    const cols = tab === "ops" ? ["when", "who", "action", "target", "outcome", "change", "detail"]
      : ["when", "who", "action", "target", "change", "detail"];
    clear(head).append(h("tr", {}, cols.map((k) => h("th", {}, k === "target" && tab !== "ops"
      ? t("audit.subject") : t(`audit.col.${k}`)))));
    clear(body);
    if (!shown.length) {
      body.append(h("tr", {}, h("td", { colspan: cols.length, class: "empty" }, t("audit.none"))));
      return;
    }
    for (const r of shown.slice(0, 2000)) {
      body.append(h("tr", { "data-action": r.action, "data-who": r.who, "data-outcome": r.outcome || "" },
        h("td", { class: "nowrap" }, fmtDateTime(r.at), h("div", { class: "muted" }, fmtTime(r.at))),
        h("td", {}, h("strong", {}, r.who), r.role ? h("div", { class: "muted" }, r.role) : null),
        h("td", {}, r.action),
        h("td", {}, r.target || "—"),
        tab === "ops" ? h("td", {}, h("span", { class: `badge ${OUTCOME_BADGE[r.outcome] || "off"}` },
          t(`audit.outcome.${r.outcome}`))) : null,
        changeCell(r.before, r.after),
        detailCell(r.detail)));
    }
  }

  function switchTab(next) {
    tab = next;
    history.replaceState(null, "", next === "attendance" ? "#/audit/attendance" : "#/audit");
    for (const b of tabs.querySelectorAll("button")) {
      const on = b.dataset.tab === tab;
      b.classList.toggle("active", on);
      b.setAttribute("aria-selected", on ? "true" : "false");
    }
    outcomeLabel.hidden = tab !== "ops";
    f.who.value = "";
    f.action.value = "";
    delete table.dataset.tab;
    rows = [];
    clear(body).append(h("tr", {}, h("td", { class: "muted" }, t("core.loading"))));
    load();
  }

  for (const k of ["who", "action", "outcome", "from", "to"]) f[k].addEventListener("change", render);
  f.limit.addEventListener("change", load);
  f.q.addEventListener("input", render);
  f.to.max = cityDate();
  outcomeLabel.hidden = tab !== "ops";
  load();
}

export default {
  id: "audit",
  roles: ["supervisor", "admin"],
  nav: true,
  strings,
  mount,
};
