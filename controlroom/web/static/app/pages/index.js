// Every page of the dashboard, in navigation order. A page module's default export:
// { id, roles (who may open it; omitted: everyone logged in), nav (false: not in the menu),
//   strings: {id: {...}, en: {...}} (must hold "<id>.nav"), mount(el, params) → cleanup? }.
import map from "./map.js";
import intersection from "./intersection.js";
import cameras from "./cameras.js";
import alarms from "./alarms.js";
import attendance from "./attendance.js";
import technicians from "./technicians.js";
import audit from "./audit.js";

export default [map, intersection, cameras, alarms, attendance, technicians, audit];
