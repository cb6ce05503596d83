// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "map",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: true,
  strings: { id: { "map.nav": "Peta Kota" }, en: { "map.nav": "City map" } },
  mount(el) {
    el.append(h("h1", {}, t("map.nav")));
  },
};
