// /report: the resident's page (mobile first). Place the matter by the browser's position
// (WGS84), a WeChat/Amap position pasted (GCJ-02) or a pin on the map (WGS84); the server
// converts and says which community and grid the point is in. Photos are shrunk here so
// that they fit the size limit; the submit goes once per ticket (the server dedupes too).
import { Map, Marker, NavigationControl } from "maplibre-gl";
import { _ } from "wangge/console.js";

const FONT_FAMILY = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "PingFang SC", "Microsoft YaHei", sans-serif';
const form = document.getElementById("rp-form");
const fields = {
  lon: document.getElementById("rp-lon"),
  lat: document.getElementById("rp-lat"),
  crs: document.getElementById("rp-crs"),
};
const where = document.getElementById("rp-where");
const message = document.getElementById("rp-message");
const mapElement = document.getElementById("rp-map");
const photoMax = Number(form.dataset.photoMax || 700000);
let map = null;
let marker = null;
let sending = false;

function say(text) {
  message.textContent = text;
  message.hidden = !text;
  if (text) message.scrollIntoView({ block: "center" });
}

function pin(lon, lat) {
  if (!map) return;
  if (!marker) marker = new Marker({ color: "#c62828" }).setLngLat([lon, lat]).addTo(map);
  else marker.setLngLat([lon, lat]);
}

async function setPlace(lon, lat, crs, moveMap) {
  fields.lon.value = String(lon);
  fields.lat.value = String(lat);
  fields.crs.value = crs;
  where.textContent = `${lon}, ${lat} (${crs.toUpperCase()})`;
  try {
    const query = new URLSearchParams({ lon, lat, crs });
    const response = await fetch(`/report/where?${query}`, { headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(String(response.status));
    const found = await response.json();
    pin(found.lon, found.lat);
    if (moveMap && map) map.easeTo({ center: [found.lon, found.lat], zoom: Math.max(map.getZoom(), 15) });
    where.textContent = found.community
      ? `${found.community} · ${found.grid}`
      : _("This place is outside the city's grids; the community will place it.");
    where.dataset.community = found.community || "";
  } catch (error) {
    where.textContent = _("The position could not be checked; it is sent as given.");
  }
}

document.getElementById("rp-here").addEventListener("click", () => {
  if (!navigator.geolocation) { say(_("This browser cannot give its position: tap the map.")); return; }
  navigator.geolocation.getCurrentPosition(
    (pos) => setPlace(pos.coords.longitude.toFixed(7), pos.coords.latitude.toFixed(7), "wgs84", true),
    () => say(_("The position was not given: tap the map or paste a WeChat position.")),
    { enableHighAccuracy: true, timeout: 10000 },
  );
});

const wechat = document.getElementById("rp-wechat");
document.getElementById("rp-wechat-toggle").addEventListener("click", () => { wechat.hidden = !wechat.hidden; });
document.getElementById("rp-wechat-use").addEventListener("click", () => {
  const parts = document.getElementById("rp-wechat-text").value.split(/[,，\s]+/).filter(Boolean);
  const [lon, lat] = parts.map(Number);
  if (parts.length !== 2 || !Number.isFinite(lon) || !Number.isFinite(lat)) {
    say(_("Paste the position as: longitude, latitude"));
    return;
  }
  say("");
  setPlace(parts[0], parts[1], "gcj02", true);
});

// shrink a photo to at most 1600 px and JPEG, so that it fits the limit
async function shrink(file) {
  if (file.size <= photoMax && file.type !== "image/heic") return file;
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, 1600 / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  canvas.getContext("2d").drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  for (const quality of [0.82, 0.7, 0.55, 0.4]) {
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
    if (blob && blob.size <= photoMax) return new File([blob], "photo.jpg", { type: "image/jpeg" });
  }
  throw new Error(_("The photo is too large even after shrinking it"));
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (sending) return;
  say("");
  if (!fields.lon.value && !form.elements.address.value.trim()) {
    say(_("Say where: your position, a WeChat position, a pin on the map or an address."));
    return;
  }
  sending = true;
  const button = document.getElementById("rp-submit");
  button.disabled = true;
  try {
    const data = new FormData(form);
    const file = document.getElementById("rp-photo").files[0];
    data.delete("photo");
    if (file) data.append("photo", await shrink(file));
    const headers = { Accept: "application/json" };
    if (form.dataset.csrf) headers["X-CSRF-Token"] = form.dataset.csrf;
    const response = await fetch(form.action, { method: "POST", body: data, headers, credentials: "same-origin" });
    let body = null;
    try { body = await response.json(); } catch (e) { body = null; }
    if (response.ok && body && body.ticket) {
      location.assign(body.ticket);
      return;
    }
    const detail = body && (Array.isArray(body.detail) ? body.detail[0] : body.detail);
    say((detail && detail.msg) || _("The report was not taken") + " (" + response.status + ")");
  } catch (error) {
    say(error.message || _("The server cannot be reached"));
  } finally {
    sending = false;
    button.disabled = false;
  }
});

function outlineBounds(collection) {
  let w = 180, s = 90, e = -180, n = -90;
  const walk = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  for (const f of collection.features) walk(f.geometry.coordinates);
  return w <= e ? [w, s, e, n] : null;
}

async function startMap() {
  const response = await fetch("/report/area.geojson");
  const outlines = await response.json();
  const bounds = outlineBounds(outlines);
  map = new Map({
    container: mapElement,
    style: {
      version: 8,
      sources: { communities: { type: "geojson", data: outlines } },
      layers: [
        { id: "background", type: "background", paint: { "background-color": "#f3f1ec" } },
        { id: "communities-fill", type: "fill", source: "communities", paint: { "fill-color": "#c4d7b2", "fill-opacity": 0.35 } },
        { id: "communities-line", type: "line", source: "communities", paint: { "line-color": "#4f6d7a", "line-width": 1.4 } },
        {
          id: "communities-label", type: "symbol", source: "communities",
          layout: { "text-field": ["get", "name"], "text-size": 13, "text-font": ["sans-serif"] },
          paint: { "text-color": "#23404c", "text-halo-color": "#ffffff", "text-halo-width": 1.2 },
        },
      ],
    },
    bounds: bounds || undefined,
    center: bounds ? undefined : [118.5, 31.7],
    zoom: bounds ? undefined : 11,
    fitBoundsOptions: { padding: 10 },
    localIdeographFontFamily: FONT_FAMILY,
    attributionControl: false,
    transformRequest: (url) => {
      if (new URL(url, location.href).origin !== location.origin) {
        console.error(`refused a map request outside this server: ${url}`);
        return { url: "about:blank" };
      }
      return { url };
    },
  });
  map.addControl(new NavigationControl({ showCompass: false }), "top-right");
  await new Promise((resolve) => map.once("load", resolve));
  map.on("click", (event) => {
    const { lng, lat } = event.lngLat;
    say("");
    setPlace(lng.toFixed(7), lat.toFixed(7), "wgs84", false);
  });
  mapElement.dataset.ready = "true";
  window.wanggeMap = map;
}

startMap().catch((error) => {
  mapElement.dataset.ready = "error";
  console.error(error);
});
