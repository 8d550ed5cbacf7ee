// Sign out leaves nothing of the work on the device (a phone shared by a shift): the field page's
// outbox (localStorage "wangge.*"), its offline copy (Cache Storage "wangge-*") and its service
// worker are removed before the session ends; the server's answer also carries
// `Clear-Site-Data: "storage"` for browsers that honour it. Actions still waiting to sync are never
// dropped silently: the first Sign out tries to send them and says how many are left; signing out
// again discards them.

const OUTBOX = "wangge.field.outbox.";
const STORE_PREFIX = "wangge.";
const CACHE_PREFIX = "wangge-";

export function waiting() {
  let n = 0;
  for (let i = 0; i < localStorage.length; i++) {
    const key = localStorage.key(i);
    if (!key?.startsWith(OUTBOX)) continue;
    try { n += JSON.parse(localStorage.getItem(key) || "[]").length; } catch (e) { /* unreadable: not work */ }
  }
  return n;
}

export async function clearDevice() {
  for (const key of Object.keys(localStorage)) if (key.startsWith(STORE_PREFIX)) localStorage.removeItem(key);
  for (const key of Object.keys(sessionStorage)) if (key.startsWith(STORE_PREFIX)) sessionStorage.removeItem(key);
  const jobs = [];
  if (globalThis.caches) {
    jobs.push(caches.keys().then((names) =>
      Promise.all(names.filter((n) => n.startsWith(CACHE_PREFIX)).map((n) => caches.delete(n)))));
  }
  if (navigator.serviceWorker?.getRegistrations) {
    jobs.push(navigator.serviceWorker.getRegistrations().then((regs) => Promise.all(regs.map((r) => r.unregister()))));
  }
  // never keep the person waiting on a slow browser API: the server's Clear-Site-Data follows anyway
  await Promise.race([Promise.allSettled(jobs), new Promise((resolve) => setTimeout(resolve, 3000))]);
}

export function guardSignOut({ _, toast }) {
  for (const form of document.querySelectorAll("form.wg-logout")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const left = waiting();
      if (left > 0 && form.dataset.discard !== "yes") {
        form.dataset.discard = "yes";  // the next Sign out discards them
        form.dataset.waiting = String(left);
        document.dispatchEvent(new CustomEvent("wg:sync-now"));
        toast(_("{n} actions are not synced yet: sync them first, or sign out again to discard them")
          .replace("{n}", left));
        return;
      }
      form.dataset.clearing = "yes";
      await clearDevice();
      form.submit();  // submit() fires no submit event: no loop
    });
  }
}
