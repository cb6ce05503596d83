// The dashboard's shared core: strings in Bahasa Indonesia and English, the JSON API with the
// session's CSRF token, times in the city's zone, a small DOM builder and dialogs. Pages import
// from here; nothing here knows any page.

const LANGS = ["id", "en"];
const strings = { id: {}, en: {} };
const listeners = new Set();

export const session = { user: null, role: null, csrf: null, via: null };
export const site = { city: "", timezone: "Asia/Jakarta" };

// ------------------------------------------------------------------ language

export function lang() {
  const saved = localStorage.getItem("kota.lang");
  return LANGS.includes(saved) ? saved : "id";
}

export function setLang(next) {
  if (!LANGS.includes(next)) return;
  localStorage.setItem("kota.lang", next);
  document.documentElement.lang = next;
  listeners.forEach((fn) => fn(next));
}

export function onLang(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** Add a page's strings: {id: {key: text}, en: {key: text}}. Keys are shared: prefix them. */
export function addStrings(dict) {
  for (const l of LANGS) Object.assign(strings[l], dict[l] || {});
}

/** The text for `key` in the current language ({name} placeholders filled from `vars`). */
export function t(key, vars = {}) {
  const text = strings[lang()][key] ?? strings.id[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
}

// ------------------------------------------------------------------ time

const ZONES = { "Asia/Jakarta": "WIB", "Asia/Pontianak": "WIB", "Asia/Makassar": "WITA",
  "Asia/Jayapura": "WIT" };

export function zoneName() {
  return ZONES[site.timezone] || site.timezone;
}

function fmt(value, options) {
  if (value === null || value === undefined || value === "") return "—";
  const d = value instanceof Date ? value : new Date(value);
  if (Number.isNaN(d.getTime())) return "—";
  return new Intl.DateTimeFormat(lang() === "id" ? "id-ID" : "en-GB",
    { timeZone: site.timezone, hour12: false, ...options }).format(d);
}

/** 14:03:07 WIB */
export function fmtTime(value) {
  const s = fmt(value, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  return s === "—" ? s : `${s.replace(/\./g, ":")} ${zoneName()}`;
}

/** 3 Des 2026 14:03 WIB */
export function fmtDateTime(value) {
  const s = fmt(value, { day: "numeric", month: "short", year: "numeric", hour: "2-digit",
    minute: "2-digit" });
  return s === "—" ? s : `${s.replace(/(\d\d)\.(\d\d)/, "$1:$2")} ${zoneName()}`;
}

/** The city's calendar date of `value` (default now) as YYYY-MM-DD. */
export function cityDate(value = new Date()) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: site.timezone, year: "numeric",
    month: "2-digit", day: "2-digit" }).format(value instanceof Date ? value : new Date(value));
  return parts;
}

export function fmtNumber(value, digits = 0) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  return new Intl.NumberFormat(lang() === "id" ? "id-ID" : "en-GB",
    { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(value);
}

// ------------------------------------------------------------------ API

export class ApiError extends Error {
  constructor(status, detail) {
    super(typeof detail === "string" ? detail : JSON.stringify(detail));
    this.status = status;
    this.detail = detail;
  }
}

/** JSON API call with the session cookie; changes carry the CSRF token. 401 → log-in page. */
export async function api(path, { method = "GET", body, raw = false } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") {
    if (session.csrf) headers["X-CSRF-Token"] = session.csrf;
    if (body !== undefined) headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  if (raw && response.ok) return response;
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const detail = data && typeof data === "object" && "detail" in data ? data.detail : data;
    if (response.status === 401 && path !== "/api/auth/login") {
      window.dispatchEvent(new CustomEvent("kota:logged-out"));
    }
    throw new ApiError(response.status, detail);
  }
  return data;
}

/** A readable message for an API failure (422 lists the fields). */
export function errorText(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (Array.isArray(err.detail)) {
    return err.detail.map((d) => `${(d.loc || []).slice(1).join(".")}: ${d.msg}`).join("; ");
  }
  if (err.status === 403) return `${t("core.forbidden")} (${err.message})`;
  return `${err.status}: ${err.message}`;
}

// ------------------------------------------------------------------ roles

export function hasRole(...roles) {
  return session.role !== null && roles.includes(session.role);
}

// ------------------------------------------------------------------ DOM

/** h("div", {class: "x", onclick: fn}, "text", child…): text is always text, never HTML. */
export function h(tag, attrs = {}, ...children) {
  const el = tag.startsWith("svg:")
    ? document.createElementNS("http://www.w3.org/2000/svg", tag.slice(4))
    : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "style" && typeof v === "object") Object.assign(el.style, v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

/** A short message at the bottom right; kind: ok | error | info. */
export function toast(message, kind = "info") {
  const box = document.getElementById("toasts");
  if (!box) return;
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" },
    message);
  box.append(el);
  setTimeout(() => el.remove(), kind === "error" ? 8000 : 4000);
}

/**
 * A modal asking to confirm; resolves to null (cancelled) or the form's values.
 * fields: [{name, label, type: "text"|"number"|"textarea"|"select", value, options, required}]
 */
export function confirmDialog({ title, text = "", fields = [], confirm = t("core.confirm"),
  danger = false }) {
  return new Promise((resolve) => {
    const inputs = {};
    const form = h("form", { class: "dialog", method: "dialog" },
      h("h2", {}, title),
      text ? h("p", {}, text) : null,
      fields.map((f) => {
        let input;
        if (f.type === "select") {
          input = h("select", { name: f.name }, (f.options || []).map(([v, label]) =>
            h("option", { value: v, selected: String(v) === String(f.value) }, label)));
        } else if (f.type === "textarea") {
          input = h("textarea", { name: f.name, rows: 3, required: f.required }, f.value ?? "");
        } else {
          input = h("input", { name: f.name, type: f.type || "text", value: f.value ?? "",
            required: f.required, min: f.min, max: f.max, step: f.step });
        }
        inputs[f.name] = input;
        return h("label", {}, h("span", {}, f.label), input);
      }),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", "data-action": "cancel" },
          t("core.cancel")),
        h("button", { type: "submit", class: danger ? "danger" : "primary",
          "data-action": "confirm" }, confirm)));
    const backdrop = h("div", { class: "backdrop" }, form);
    const done = (value) => { backdrop.remove(); resolve(value); };
    form.querySelector("[data-action=cancel]").addEventListener("click", () => done(null));
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      const values = {};
      for (const [name, input] of Object.entries(inputs)) values[name] = input.value;
      done(values);
    });
    backdrop.addEventListener("keydown", (ev) => { if (ev.key === "Escape") done(null); });
    document.body.append(backdrop);
    (Object.values(inputs)[0] || form.querySelector("[data-action=confirm]")).focus();
  });
}

/** Call `fn` now and every `ms` until the returned stop function is called; errors are shown
 * once in `statusEl` (if given) and retried. */
export function every(ms, fn, statusEl = null) {
  let timer = null;
  let stopped = false;
  const run = async () => {
    try {
      await fn();
      if (statusEl) statusEl.textContent = "";
    } catch (err) {
      if (statusEl) statusEl.textContent = `${t("core.load_failed")}: ${errorText(err)}`;
    }
    if (!stopped) timer = setTimeout(run, ms);
  };
  run();
  return () => { stopped = true; clearTimeout(timer); };
}

addStrings({
  id: {
    "core.confirm": "Ya, lanjutkan", "core.cancel": "Batal", "core.forbidden": "Peran Anda tidak diizinkan",
    "core.load_failed": "Gagal memuat", "core.loading": "Memuat…", "core.none": "Tidak ada",
  },
  en: {
    "core.confirm": "Yes, go ahead", "core.cancel": "Cancel", "core.forbidden": "Your role may not do this",
    "core.load_failed": "Could not load", "core.loading": "Loading…", "core.none": "None",
  },
});

/** Load a page's own stylesheet once (e.g. useCss("/ui/pages/map.css")). */
export function useCss(href) {
  if (document.querySelector(`link[data-css="${href}"]`)) return;
  document.head.append(h("link", { rel: "stylesheet", href, "data-css": href }));
}
