// The field page's outbox: actions are kept on the phone (localStorage) until the server has them.
//
//   const q = new Outbox(personId, { onChange, onFailed, onSynced })
//   q.add(kind, body, what)  queue one action with a fresh idempotency key (what: a signature;
//                            the same thing queued twice — a double tap — is kept once)
//   q.flush()                send everything, in order, one at a time
//   q.pending()              the actions still waiting
//
// Each action keeps its key until the server answered it, so a resend (the answer was lost,
// the page was reloaded, the phone came back online) is the same action to the server, which
// does every key once. An answer 2xx removes it (replayed or not); 4xx removes it too and
// reports why (the offer lapsed, too far from the building ...: retrying cannot help); no
// answer, 5xx, 408/429 or 401 (sign in again) keep it for the next try. Nothing is dropped silently.

const ENDPOINT = "/console/field/actions";
const RETRY_MS = 15000;

function newKey() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function csrf() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

export class Outbox {
  constructor(personId, handlers = {}) {
    this.storeKey = `wangge.field.outbox.${personId}`;
    this.handlers = handlers;
    this.flushing = false;
    window.addEventListener("online", () => this.flush());
    window.addEventListener("storage", (e) => { if (e.key === this.storeKey) this.changed(); });
    setInterval(() => { if (this.pending().length) this.flush(); }, RETRY_MS);
  }

  pending() {
    try {
      return JSON.parse(localStorage.getItem(this.storeKey) || "[]");
    } catch (e) {
      return [];
    }
  }

  save(items) {
    localStorage.setItem(this.storeKey, JSON.stringify(items));
    this.changed();
  }

  changed() {
    this.handlers.onChange?.(this.pending());
  }

  add(kind, body, what) {
    const items = this.pending();
    if (what && items.some((a) => a.what === what)) return null;  // a double tap: already queued
    const action = { kind, what, body: { ...body, kind, key: newKey(), at: new Date().toISOString() },
                     queuedAt: Date.now(), tries: 0 };
    items.push(action);
    this.save(items);
    this.flush();
    return action;
  }

  remove(key) {
    this.save(this.pending().filter((a) => a.body.key !== key));
  }

  async flush() {
    if (this.flushing) return;
    this.flushing = true;
    try {
      // one tab at a time (the server would make a second send harmless anyway)
      if (navigator.locks) await navigator.locks.request(this.storeKey, () => this.sendAll());
      else await this.sendAll();
    } finally {
      this.flushing = false;
    }
  }

  async sendAll() {
    let synced = 0;
    for (const action of this.pending()) {
      if (!navigator.onLine) break;
      let response;
      try {
        response = await fetch(ENDPOINT, {
          method: "POST",
          credentials: "same-origin",
          headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRF-Token": csrf() },
          body: JSON.stringify(action.body),
        });
      } catch (e) {
        break;  // no network: keep everything, try again later
      }
      if (response.ok) {
        this.remove(action.body.key);
        synced += 1;
        continue;
      }
      if (response.status === 401 || response.status === 408 || response.status === 429 || response.status >= 500) {
        this.handlers.onStalled?.(action, response.status);
        break;  // kept: sign in again / the server is busy
      }
      let message = String(response.status);
      try {
        const body = await response.json();
        const detail = Array.isArray(body.detail) ? body.detail[0] : body.detail;
        message = detail?.msg || message;
      } catch (e) { /* not JSON */ }
      this.remove(action.body.key);
      this.handlers.onFailed?.(action, response.status, message);
    }
    if (synced) this.handlers.onSynced?.(synced);
  }
}
