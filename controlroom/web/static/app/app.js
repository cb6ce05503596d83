// The dashboard shell: log-in, the header (city, clock in the city's zone, language, user),
// the navigation each role may see, and the hash router (#/page/param…) that mounts pages.
import {
  api, addStrings, clear, errorText, fmtTime, h, hasRole, lang, onLang, session, setLang, site, t,
  toast,
} from "./core.js";
import PAGES from "./pages/index.js";

addStrings({
  id: {
    "app.title": "Ruang Kontrol Kota Pintar", "app.login": "Masuk", "app.logout": "Keluar",
    "app.user": "Nama pengguna", "app.password": "Kata sandi", "app.login_failed": "Gagal masuk",
    "app.lang": "English", "app.not_found": "Halaman tidak ditemukan",
    "app.no_access": "Peran {role} tidak dapat membuka halaman ini.",
    "app.logged_out": "Sesi berakhir; silakan masuk lagi.",
    "role.operator": "Operator", "role.supervisor": "Supervisor", "role.bkpsdm": "BKPSDM",
    "role.technician": "Teknisi", "role.admin": "Admin",
  },
  en: {
    "app.title": "Kota Pintar Control Room", "app.login": "Log in", "app.logout": "Log out",
    "app.user": "User name", "app.password": "Password", "app.login_failed": "Log-in failed",
    "app.lang": "Bahasa Indonesia", "app.not_found": "Page not found",
    "app.no_access": "Role {role} may not open this page.",
    "app.logged_out": "Your session ended; please log in again.",
    "role.operator": "Operator", "role.supervisor": "Supervisor", "role.bkpsdm": "BKPSDM",
    "role.technician": "Technician", "role.admin": "Admin",
  },
});
for (const page of PAGES) addStrings(page.strings || {});

const HOME = { operator: "map", supervisor: "map", admin: "map", bkpsdm: "attendance",
  technician: "technicians" };

let cleanup = null;

function route() {
  const parts = (location.hash.replace(/^#\/?/, "") || "").split("/").map(decodeURIComponent);
  return { id: parts[0] || HOME[session.role] || "map", params: parts.slice(1).filter(Boolean) };
}

function allowed(page) {
  return !page.roles || hasRole(...page.roles);
}

function renderHeader() {
  const header = clear(document.getElementById("header"));
  const current = route().id;
  header.append(
    h("div", { class: "brand" }, h("strong", {}, t("app.title")), " — ",
      h("span", { id: "city" }, site.city)),
    session.user ? h("nav", { id: "nav" }, PAGES.filter((p) => p.nav !== false && allowed(p))
      .map((p) => h("a", { href: `#/${p.id}`, class: p.id === current ? "active" : null,
        "data-page": p.id }, t(`${p.id}.nav`)))) : h("nav", {}),
    h("div", { class: "tools" },
      h("span", { id: "clock", class: "muted" }),
      h("button", { id: "lang", type: "button", class: "secondary",
        onclick: () => setLang(lang() === "id" ? "en" : "id") }, t("app.lang")),
      session.user ? h("span", { id: "whoami" }, `${session.user} (${t(`role.${session.role}`)})`)
        : null,
      session.user && session.via === "session" ? h("button", { id: "logout", type: "button",
        class: "secondary", onclick: logout }, t("app.logout")) : null));
  tick();
}

function tick() {
  const clock = document.getElementById("clock");
  if (clock) clock.textContent = fmtTime(new Date());
}

function mount() {
  if (cleanup) { try { cleanup(); } catch (err) { console.error(err); } cleanup = null; }
  const main = clear(document.getElementById("main"));
  renderHeader();
  if (!session.user) { renderLogin(main); return; }
  const { id, params } = route();
  const page = PAGES.find((p) => p.id === id);
  if (!page) { main.append(h("p", { class: "empty" }, t("app.not_found"))); return; }
  if (!allowed(page)) {
    main.append(h("p", { class: "empty", id: "no-access" },
      t("app.no_access", { role: t(`role.${session.role}`) })));
    return;
  }
  document.title = `${t(`${page.id}.nav`)} — ${t("app.title")}`;
  const el = h("section", { class: `page page-${page.id}`, "data-page": page.id });
  main.append(el);
  try {
    cleanup = page.mount(el, params) || null;
  } catch (err) {
    el.append(h("p", { class: "error" }, errorText(err)));
  }
}

function renderLogin(main) {
  const error = h("p", { class: "error", id: "login-error", role: "alert" });
  const form = h("form", { id: "login", class: "login" },
    h("h1", {}, t("app.login")),
    h("label", {}, h("span", {}, t("app.user")),
      h("input", { name: "name", autocomplete: "username", required: true })),
    h("label", {}, h("span", {}, t("app.password")),
      h("input", { name: "password", type: "password", autocomplete: "current-password",
        required: true })),
    h("button", { type: "submit", class: "primary" }, t("app.login")), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      const me = await api("/api/auth/login", { method: "POST",
        body: { name: form.name.value.trim(), password: form.password.value } });
      Object.assign(session, { user: me.user, role: me.role, csrf: me.csrf_token, via: "session" });
      if (!location.hash || location.hash === "#/") location.hash = `#/${HOME[me.role] || "map"}`;
      mount();
    } catch (err) {
      error.textContent = `${t("app.login_failed")}: ${err.status === 401 ? err.message : errorText(err)}`;
    }
  });
  main.append(form);
  form.name.focus();
}

async function logout() {
  try { await api("/api/auth/logout", { method: "POST" }); } catch (err) { toast(errorText(err), "error"); }
  Object.assign(session, { user: null, role: null, csrf: null, via: null });
  mount();
}

async function start() {
  document.documentElement.lang = lang();
  try { Object.assign(site, await api("/api/site")); } catch { /* defaults */ }
  try {
    const me = await api("/api/auth/me");
    Object.assign(session, { user: me.user, role: me.role, csrf: me.csrf_token || null,
      via: me.via });
  } catch { /* not logged in: the log-in form */ }
  window.addEventListener("hashchange", mount);
  window.addEventListener("kota:logged-out", () => {
    if (!session.user) return;
    Object.assign(session, { user: null, role: null, csrf: null, via: null });
    toast(t("app.logged_out"), "error");
    mount();
  });
  onLang(mount);
  setInterval(tick, 1000);
  mount();
}

start();
