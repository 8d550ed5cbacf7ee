// Service worker of the field page (scope /console/field): the page and the console's scripts
// and styles are kept in a cache, so the page reloads without a network; the actions the page
// queued stay in localStorage and are sent when the network is back (field-queue.js).
// Network first: online, the page is always fresh (and the cached copy replaced); a page that
// redirects (signed out) is never kept, and the kept copy is dropped.
const CACHE = "wangge-field-v1";
const PAGE = "/console/field";

self.addEventListener("install", (event) => event.waitUntil(caches.open(CACHE).then((c) => c.add(PAGE)).then(() => self.skipWaiting())));
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

// the page tells what it loaded (its scripts, styles, modules): keep those too
self.addEventListener("message", (event) => {
  const urls = (event.data && event.data.keep) || [];
  const mine = urls.filter((u) => keepable(new URL(u, self.location.origin)));
  event.waitUntil(
    caches.open(CACHE).then(async (cache) => {
      await Promise.all(mine.map((u) => cache.add(u).catch(() => null)));
      event.source?.postMessage({ kept: mine.length });
    }),
  );
});

function keepable(url) {
  return url.origin === self.location.origin && (url.pathname === PAGE || url.pathname.startsWith("/console/static/"));
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (!keepable(url)) return;
  const isPage = url.pathname === PAGE;
  if (isPage && request.mode !== "navigate") return;  // htmx and scripts read the page live
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      const key = isPage ? PAGE : request;
      try {
        const response = await fetch(request);
        if (response.ok && response.type === "basic" && !response.redirected) {
          await cache.put(key, response.clone());
        } else if (isPage) {
          await cache.delete(PAGE);
        }
        return response;
      } catch (error) {
        const kept = await cache.match(key);
        if (kept) return kept;
        throw error;
      }
    })(),
  );
});
