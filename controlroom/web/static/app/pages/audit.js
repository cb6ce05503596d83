// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "audit",
  roles: ["supervisor", "admin"],
  nav: true,
  strings: { id: { "audit.nav": "Log Audit" }, en: { "audit.nav": "Audit log" } },
  mount(el) {
    el.append(h("h1", {}, t("audit.nav")));
  },
};
