// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "intersection",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: false,
  strings: { id: { "intersection.nav": "Simpang" }, en: { "intersection.nav": "Intersection" } },
  mount(el) {
    el.append(h("h1", {}, t("intersection.nav")));
  },
};
