// Placeholder until the page is built.
import { h, t } from "../core.js";

export default {
  id: "attendance",
  roles: ["bkpsdm", "admin"],
  nav: true,
  strings: { id: { "attendance.nav": "Kehadiran" }, en: { "attendance.nav": "Attendance" } },
  mount(el) {
    el.append(h("h1", {}, t("attendance.nav")));
  },
};
