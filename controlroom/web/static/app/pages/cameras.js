// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "cameras",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: true,
  strings: { id: { "cameras.nav": "Kamera" }, en: { "cameras.nav": "Cameras" } },
  mount(el) {
    el.append(h("h1", {}, t("cameras.nav")));
  },
};
