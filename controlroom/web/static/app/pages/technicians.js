// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "technicians",
  roles: ["technician", "supervisor", "admin"],
  nav: true,
  strings: { id: { "technicians.nav": "Perangkat" }, en: { "technicians.nav": "Devices" } },
  mount(el) {
    el.append(h("h1", {}, t("technicians.nav")));
  },
};
