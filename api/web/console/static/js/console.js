// The console's page runtime (an ES module; also on window.wg for plain scripts).
//
//   wg._("text")            the text in the page's language (catalogue embedded by base.html)
//   wg.word(table, code)    a code in words (status, channel, task_status, person_role)
//   wg.csrf                 the session's CSRF secret (htmx sends it by itself: hx-headers on <body>)
//   wg.fetch(url, options)  fetch() with the CSRF header, same-origin credentials, JSON errors thrown
//   wg.live                 the page's one event stream, opened when <body data-live="incidents,...">:
//                           every event is re-dispatched on document.body as a DOM event
//                           "wg:incident", "wg:task", "wg:person", "wg:bulk", "wg:reset", "wg:hello"
//                           (detail = the event's data), so htmx can refresh a partial with
//                           hx-trigger="wg:incident from:body" and scripts can addEventListener.
//   wg.toast(text)          a short message at the bottom of the page

import { guardSignOut } from "wangge/signout.js";

const embedded = JSON.parse(document.getElementById("wg-i18n")?.textContent || "{}");
const catalogue = embedded.strings || {};
const words = embedded.words || {};

export function _(msgid) {
  return Object.prototype.hasOwnProperty.call(catalogue, msgid) ? catalogue[msgid] : msgid;
}

// how the console names a code: word("status", "in_progress") → "处置中"
export function word(table, code) {
  return (words[table] && words[table][code]) || code;
}

const csrf = document.querySelector('meta[name="csrf-token"]')?.content || "";

export async function wgFetch(url, options = {}) {
  const headers = new Headers(options.headers || {});
  if (csrf) headers.set("X-CSRF-Token", csrf);
  if (!headers.has("Accept")) headers.set("Accept", "application/json");
  const response = await fetch(url, { credentials: "same-origin", ...options, headers });
  if (!response.ok) {
    let message = `${response.status}`;
    try {
      const body = await response.json();
      const detail = Array.isArray(body.detail) ? body.detail[0] : body.detail;
      message = detail?.msg || message;
    } catch (e) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

let toastTimer = null;
export function toast(text) {
  const box = document.getElementById("wg-toast");
  if (!box) return;
  box.textContent = text;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

const EVENTS = ["hello", "incident", "task", "person", "bulk", "reset"];

class LiveStream {
  constructor(topics, community) {
    const query = new URLSearchParams({ topics });
    if (community) query.set("community", community);
    this.url = `/console/events?${query}`;
    this.indicator = document.getElementById("wg-live");
    this.opened = false;
    this.connect();
  }

  state(name, title) {
    if (!this.indicator) return;
    this.indicator.dataset.state = name;
    this.indicator.title = title;
  }

  connect() {
    this.source = new EventSource(this.url);
    this.source.onopen = () => {
      if (this.opened) {
        // back after a drop: changes may have been missed
        document.body.dispatchEvent(new CustomEvent("wg:reset", { detail: { reason: "reconnected" } }));
      }
      this.opened = true;
      this.state("open", _("Live updates on"));
    };
    this.source.onerror = () => {
      this.state("closed", _("Live updates interrupted; reconnecting"));
      if (this.source.readyState === EventSource.CLOSED) {
        // the stream was refused (the session ended, or the server restarts): a signed-out
        // page goes to the sign-in page, otherwise try again in a few seconds
        fetch(location.pathname, { credentials: "same-origin", headers: { "HX-Request": "true" } })
          .then((r) => {
            const login = r.headers.get("HX-Redirect");
            if (r.status === 401 && login) location.href = login;
            else setTimeout(() => this.connect(), 5000);
          })
          .catch(() => setTimeout(() => this.connect(), 5000));
      }
    };
    for (const name of EVENTS) {
      this.source.addEventListener(name, (event) => {
        let detail = null;
        try { detail = JSON.parse(event.data); } catch (e) { detail = event.data; }
        document.body.dispatchEvent(new CustomEvent(`wg:${name}`, { detail }));
      });
    }
  }

  close() {
    this.source?.close();
    this.state("off", _("Live updates off"));
  }
}

function startLive() {
  const topics = document.body.dataset.live;
  if (!topics) return null;
  return new LiveStream(topics, document.body.dataset.liveCommunity || "");
}

function htmxErrors() {
  document.body.addEventListener("htmx:responseError", (event) => {
    const xhr = event.detail.xhr;
    let message = _("The request failed") + " (" + xhr.status + ")";
    try {
      const body = JSON.parse(xhr.responseText);
      const detail = Array.isArray(body.detail) ? body.detail[0] : body.detail;
      if (detail?.msg) message = detail.msg;
    } catch (e) { /* not JSON */ }
    toast(message);
  });
  document.body.addEventListener("htmx:sendError", () => toast(_("The server cannot be reached")));
}

export const wg = { _, word, csrf, fetch: wgFetch, toast, live: null };
window.wg = wg;
htmxErrors();
guardSignOut({ _, toast });
wg.live = startLive();
window.addEventListener("pagehide", () => wg.live?.close());
document.dispatchEvent(new CustomEvent("wg:ready"));
