// The live feed (/api/live, Server-Sent Events) for any page: one stream per caller, its
// events handed to the caller's handlers, reconnecting by itself after a network failure or a
// server restart (EventSource retries; a refused stream is retried here with back-off), and a
// connection state the page shows. A refused stream whose session has ended logs the user out.
import { api } from "./core.js";

const WATCHDOG_MS = 40000; // the server sends a heartbeat every 15 s: silence this long is a dead link
const BACKOFF_MS = [1000, 2000, 4000, 8000, 10000];

/**
 * connectLive({intersections, cameras, heartbeat, state}) → {close()}.
 * intersections/cameras/heartbeat get the parsed event data; state gets
 * "connecting" | "open" | "lost" whenever it changes.
 */
export function connectLive(handlers = {}) {
  let source = null;
  let closed = false;
  let retry = 0;
  let retryTimer = null;
  let watchdog = null;
  let current = null;

  const setState = (next) => {
    if (next === current) return;
    current = next;
    if (handlers.state) handlers.state(next);
  };

  const feed = (name) => (ev) => {
    alive();
    retry = 0;
    setState("open"); // live once data flows, not when a response merely starts
    let data;
    try { data = JSON.parse(ev.data); } catch { return; }
    if (handlers[name]) handlers[name](data);
  };

  function alive() {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => { setState("lost"); reopen(); }, WATCHDOG_MS);
  }

  function open() {
    if (closed) return;
    setState(current === "lost" ? "lost" : "connecting");
    source = new EventSource("/api/live", { withCredentials: true });
    source.addEventListener("open", alive);
    for (const name of ["intersections", "cameras", "heartbeat"]) {
      source.addEventListener(name, feed(name));
    }
    source.addEventListener("error", () => {
      if (closed) return;
      setState("lost");
      // CONNECTING: the browser retries by itself (server down, restarting). CLOSED: the
      // server answered with an error (e.g. 401 after a restart, 503): find out and retry.
      if (source && source.readyState === EventSource.CLOSED) reopen();
    });
  }

  async function reopen() {
    if (closed) return;
    if (source) { source.close(); source = null; }
    clearTimeout(retryTimer);
    const delay = BACKOFF_MS[Math.min(retry, BACKOFF_MS.length - 1)];
    retry += 1;
    try {
      await api("/api/auth/me"); // 401: core.js logs the user out, the page goes away
    } catch (err) {
      if (err && err.status === 401) return;
    }
    retryTimer = setTimeout(open, delay);
  }

  open();
  return {
    close() {
      closed = true;
      clearTimeout(retryTimer);
      clearTimeout(watchdog);
      if (source) source.close();
      source = null;
    },
  };
}
