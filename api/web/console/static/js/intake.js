// /console/intake: the window. Choose the item, place the matter (map click, typed
// coordinates with their system, or the caller's address), see the grid, worker, branch and
// time limit (an htmx partial from the server, which converts the coordinates), file it once.
//
// Idempotency: the page holds one key per matter. It changes only when the matter changes
// after a case was filed (or on "New matter"), so a double click or a retry makes one case.
import { Marker } from "maplibre-gl";
import { createBaseMap } from "wangge/basemap.js";
import { _, wg } from "wangge/console.js";

const form = document.getElementById("in-form");
const key = document.getElementById("in-key");
const itemCode = document.getElementById("in-item-code");
const chosen = document.getElementById("in-item-chosen");
const fields = {
  lon: document.getElementById("in-lon"),
  lat: document.getElementById("in-lat"),
  crs: document.getElementById("in-crs"),
};
const place = document.getElementById("in-place");
const mapElement = document.getElementById("in-map");
let filed = false;
let fromMap = false;
let map = null;
let marker = null;

function newKey() {
  key.value = crypto.randomUUID();
  filed = false;
}

function matterChanged() {
  if (filed) newKey();
}

function preview() {
  if (!fields.lon.value || !fields.lat.value || !fields.crs.value) return;
  const query = new URLSearchParams({
    lon: fields.lon.value,
    lat: fields.lat.value,
    crs: fields.crs.value,
    item_code: itemCode.value,
  });
  htmx.ajax("GET", `/console/intake/place?${query}`, { target: "#in-place", swap: "innerHTML" });
}

function setPlace(lon, lat, crs, clicked = false) {
  fromMap = clicked;
  fields.lon.value = String(lon);
  fields.lat.value = String(lat);
  fields.crs.value = crs;
  matterChanged();
  preview();
}

function showMarker(lon, lat) {
  if (!map) return;
  if (!marker) marker = new Marker({ color: "#c62828" }).setLngLat([lon, lat]).addTo(map);
  else marker.setLngLat([lon, lat]);
}

// 1. the item
document.getElementById("in-catalogue").addEventListener("click", (event) => {
  const button = event.target.closest("[data-item-code]");
  if (!button) return;
  for (const b of document.querySelectorAll(".in-item[aria-selected]")) b.removeAttribute("aria-selected");
  button.setAttribute("aria-selected", "true");
  itemCode.value = button.dataset.itemCode;
  chosen.textContent = `${button.dataset.itemCode} · ${button.dataset.itemName}`;
  chosen.dataset.onTheSpot = button.dataset.onTheSpot;
  matterChanged();
  preview();
});

// 2. the place: typed coordinates (with their system), the caller's address, or the map
document.getElementById("in-locate").addEventListener("click", () => {
  const lon = document.getElementById("in-typed-lon").value.trim();
  const lat = document.getElementById("in-typed-lat").value.trim();
  const crs = document.getElementById("in-typed-crs").value;
  if (!lon || !lat) { wg.toast(_("Type both longitude and latitude")); return; }
  if (!crs) { wg.toast(_("Say which coordinate system the numbers are in")); return; }
  setPlace(lon, lat, crs);
});

document.getElementById("in-places").addEventListener("click", (event) => {
  const button = event.target.closest(".in-place-pick");
  if (!button) return;
  document.getElementById("in-address").value = button.dataset.address;
  setPlace(button.dataset.lon, button.dataset.lat, "wgs84");
});

// the partial says where the server put the point (in WGS84): the marker goes there
document.body.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (target === place) {
    const info = document.getElementById("in-placement");
    if (info) {
      showMarker(Number(info.dataset.lon), Number(info.dataset.lat));
      if (map && !fromMap) {
        map.easeTo({ center: [Number(info.dataset.lon), Number(info.dataset.lat)], zoom: Math.max(map.getZoom(), 16) });
      }
    }
  }
  if (target.id === "in-result") {
    const card = target.querySelector("[data-incident-id]");
    if (card) {
      filed = true;
      document.body.dispatchEvent(new CustomEvent("in:filed"));  // the recent list refreshes
    }
  }
});

// live: a case of the same item filed (or changed) near the place shown elsewhere — another
// window, the hotline, a resident — refreshes the nearby list (one stream per page: console.js)
const NEAR_M = 400;
let refreshNearby = null;
function metres(lon1, lat1, lon2, lat2) {
  const rad = Math.PI / 180;
  const x = (lon2 - lon1) * rad * Math.cos(((lat1 + lat2) / 2) * rad);
  const y = (lat2 - lat1) * rad;
  return Math.hypot(x, y) * 6371000;
}
document.body.addEventListener("wg:incident", (event) => {
  const info = document.getElementById("in-placement");
  if (!info || !itemCode.value) return;
  const lon = Number(info.dataset.lon);
  const lat = Number(info.dataset.lat);
  const near = (event.detail?.rows || []).some((row) => row.item === itemCode.value
    && row.x != null && row.y != null && metres(lon, lat, row.x, row.y) <= NEAR_M);
  if (!near) return;
  clearTimeout(refreshNearby);
  refreshNearby = setTimeout(() => { fromMap = true; preview(); }, 500);  // keep the map where it is
});

form.addEventListener("input", (event) => {
  if (event.target.matches("textarea, input[name='reporter_name'], input[name='reporter_phone'], input[name='address']")) {
    matterChanged();
  }
});

document.getElementById("in-new").addEventListener("click", () => {
  form.reset();
  itemCode.value = "";
  for (const f of Object.values(fields)) f.value = "";
  chosen.textContent = chosen.dataset.empty;
  document.getElementById("in-result").replaceChildren();
  place.replaceChildren();
  marker?.remove();
  marker = null;
  newKey();
});

newKey();
createBaseMap(mapElement).then((m) => {
  map = m;
  map.getCanvas().style.cursor = "crosshair";
  map.on("click", (event) => {
    const { lng, lat } = event.lngLat;
    setPlace(lng.toFixed(7), lat.toFixed(7), "wgs84", true);
  });
  mapElement.dataset.ready = "true";
  window.wanggeMap = map;
}).catch((error) => {
  mapElement.dataset.ready = "error";
  console.error(error);
});
