// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "alarms",
  roles: ["operator", "supervisor", "admin", "technician"],
  nav: true,
  strings: { id: { "alarms.nav": "Alarm" }, en: { "alarms.nav": "Alarms" } },
  mount(el) {
    el.append(h("h1", {}, t("alarms.nav")));
  },
};
