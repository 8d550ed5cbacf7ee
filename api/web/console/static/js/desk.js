// /console/dispatch: the dispatcher desk — countdowns, live queue, "N new cases", map linked to the list.
import { createBaseMap, COLOURS } from "wangge/basemap.js";
import { _, word } from "wangge/console.js";

const queue = document.getElementById("desk-queue");
const panel = document.getElementById("desk-case");
const banner = document.getElementById("desk-new");
const mapBox = document.getElementById("desk-map");
const ROLE_COLOURS = {
  grid_worker: "#1b7f3b", window_worker: "#2f6f8f", volunteer: "#7b3fa0",
  rider: "#d9640f", police: "#1c3f94", department_staff: "#6d6d6d",
};

// ---------------------------------------------------------------- countdowns (办理时限)
const UNITS = { d: _("d"), h: _("h"), min: _("min") };
const LEFT = _("left");
const LATE = _("overdue by");
function spell(ms) {
  const minutes = Math.round(Math.abs(ms) / 60000);
  const d = Math.floor(minutes / 1440), h = Math.floor((minutes % 1440) / 60), m = minutes % 60;
  if (d > 0) return d + UNITS.d + " " + h + UNITS.h;
  if (h > 0) return h + UNITS.h + " " + m + UNITS.min;
  return m + UNITS.min;
}
function tick() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time.desk-due[data-due]")) {
    if (!el.dataset.due) continue;
    const left = Date.parse(el.dataset.due) - now;
    if (!el.title) el.title = el.textContent.trim();
    el.dataset.state = left < 0 ? "overdue" : left < 4 * 3600 * 1000 ? "soon" : "ok";
    el.textContent = (left < 0 ? LATE : LEFT) + " " + spell(left);
    el.closest("tr.desk-row")?.classList.toggle("is-overdue", left < 0);
  }
}
setInterval(tick, 15000);

// ---------------------------------------------------------------- the queue, live
let refreshTimer = null;
function refreshQueue() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    const checked = [...queue.querySelectorAll('input[name="ids"]:checked')].map((b) => b.value);
    htmx.ajax("GET", "/console/dispatch" + location.search, { target: "#desk-queue", swap: "innerHTML" })
      .then(() => {
        for (const id of checked) {
          const box = queue.querySelector(`input[name="ids"][value="${id}"]`);
          if (box) box.checked = true;
        }
      });
  }, 800);
}
const fresh = new Set();
function showNew() {
  if (!fresh.size) { banner.hidden = true; return; }
  banner.hidden = false;
  const label = fresh.size === 1 ? _("new case") : _("new cases");
  banner.textContent = fresh.size + " " + label + " · " + [...fresh].slice(-5).map((i) => "#" + i).join(" ");
  banner.dataset.count = String(fresh.size);
}
banner.addEventListener("click", () => { fresh.clear(); showNew(); refreshQueue(); });
document.body.addEventListener("wg:incident", (e) => {
  const rows = e.detail.rows || [];
  if (e.detail.op === "INSERT") for (const r of rows) fresh.add(r.id);
  showNew();
  refreshQueue();
  const open = panel.querySelector("[data-case]");
  // the open case changed elsewhere: refresh its panel, unless the dispatcher is working in it
  const busy = panel.matches(":hover") || panel.contains(document.activeElement);
  if (e.detail.op === "UPDATE" && open && !busy && rows.some((r) => String(r.id) === open.dataset.case)) {
    htmx.ajax("GET", `/console/dispatch/cases/${open.dataset.case}`, { target: "#desk-case", swap: "innerHTML" });
  }
});
document.body.addEventListener("wg:bulk", refreshQueue);
document.body.addEventListener("wg:reset", refreshQueue);
document.body.addEventListener("desk:changed", refreshQueue);

// ---------------------------------------------------------------- selection (list ↔ map ↔ panel)
let map = null;
function select(id, fly = true) {
  const url = new URL(location.href);
  url.searchParams.set("case", id);
  history.replaceState(history.state, "", url);
  for (const tr of queue.querySelectorAll("tr.is-selected")) tr.classList.remove("is-selected");
  const row = queue.querySelector(`tr[data-incident-id="${id}"]`);
  row?.classList.add("is-selected");
  htmx.ajax("GET", `/console/dispatch/cases/${id}`, { target: "#desk-case", swap: "innerHTML" });
  if (fly && map && row?.dataset.x) map.flyTo({ center: [+row.dataset.x, +row.dataset.y], zoom: Math.max(map.getZoom(), 15) });
}
queue.addEventListener("click", (e) => {
  if (e.target.closest("input, button, a, select, label")) return;
  const row = e.target.closest("tr[data-incident-id]");
  if (row) select(row.dataset.incidentId);
});
queue.addEventListener("keydown", (e) => {
  const row = e.target.closest("tr[data-incident-id]");
  if (row && e.key === "Enter") select(row.dataset.incidentId);
});
queue.addEventListener("change", (e) => {
  if (e.target.id === "desk-all") {
    for (const box of queue.querySelectorAll('input[name="ids"]')) box.checked = e.target.checked;
  }
});

// ---------------------------------------------------------------- the map
function caseFeatures() {
  return [...queue.querySelectorAll("tr[data-incident-id][data-x]")].map((tr) => ({
    type: "Feature",
    id: +tr.dataset.incidentId,
    geometry: { type: "Point", coordinates: [+tr.dataset.x, +tr.dataset.y] },
    properties: { id: +tr.dataset.incidentId, overdue: tr.classList.contains("is-overdue"), selected: tr.classList.contains("is-selected") },
  }));
}
function drawCases() {
  map?.getSource("desk-cases")?.setData({ type: "FeatureCollection", features: caseFeatures() });
}
const people = new Map();
function drawPeople() {
  map?.getSource("desk-people")?.setData({
    type: "FeatureCollection",
    features: [...people.values()].map(([id, role, x, y]) => ({
      type: "Feature", id, geometry: { type: "Point", coordinates: [x, y] }, properties: { id, role },
    })),
  });
}
async function loadPeople() {
  if (!map || map.getZoom() < 12) { people.clear(); drawPeople(); mapBox.dataset.people = "0"; return; }
  const b = map.getBounds();
  const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(5)).join(",");
  const r = await fetch(`/console/dispatch/people?bbox=${bbox}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (!r.ok) return;
  const body = await r.json();
  people.clear();
  for (const p of body.people) people.set(p[0], p);
  drawPeople();
  mapBox.dataset.people = String(people.size);
}
document.body.addEventListener("wg:person", (e) => {
  for (const row of e.detail.rows || []) {
    if (row.x == null || row.y == null) continue;
    if (row.on_duty === false) people.delete(row.id);
    else if (people.has(row.id) || map?.getBounds().contains([row.x, row.y])) people.set(row.id, [row.id, row.role, row.x, row.y]);
  }
  drawPeople();
});

createBaseMap(mapBox).then((m) => {
  map = m;
  const roleColour = ["match", ["get", "role"]];
  for (const [role, colour] of Object.entries(ROLE_COLOURS)) roleColour.push(role, colour);
  roleColour.push(COLOURS.person);
  map.addSource("desk-people", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "desk-people", type: "circle", source: "desk-people",
    paint: { "circle-color": roleColour, "circle-radius": 4.5, "circle-stroke-color": "#fff", "circle-stroke-width": 1.2 },
  });
  map.addSource("desk-cases", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "desk-cases", type: "circle", source: "desk-cases",
    paint: {
      "circle-color": ["case", ["get", "overdue"], COLOURS.overdue, COLOURS.open],
      "circle-radius": ["case", ["get", "selected"], 10, 7],
      "circle-stroke-color": ["case", ["get", "selected"], "#17323d", "#ffffff"],
      "circle-stroke-width": ["case", ["get", "selected"], 3, 1.5],
    },
  });
  map.on("click", "desk-cases", (e) => { const f = e.features?.[0]; if (f) select(String(f.properties.id), false); });
  map.on("mouseenter", "desk-cases", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "desk-cases", () => { map.getCanvas().style.cursor = ""; });
  map.on("moveend", () => { loadPeople().catch((err) => console.warn(err)); });
  drawCases();
  loadPeople().catch((err) => console.warn(err));
  mapBox.dataset.ready = "true";
  window.wanggeDeskMap = map;
}).catch((error) => {
  mapBox.dataset.ready = "error";
  console.error(error);
});

// ---------------------------------------------------------------- after every swap
document.body.addEventListener("htmx:afterSwap", (e) => {
  tick();
  if (e.detail.target === queue) {
    const open = panel.querySelector("[data-case]");
    if (open) queue.querySelector(`tr[data-incident-id="${open.dataset.case}"]`)?.classList.add("is-selected");
    drawCases();
  }
  if (e.detail.target === panel) {
    const open = panel.querySelector("[data-case]");
    for (const tr of queue.querySelectorAll("tr.is-selected")) tr.classList.remove("is-selected");
    if (open) queue.querySelector(`tr[data-incident-id="${open.dataset.case}"]`)?.classList.add("is-selected");
    drawCases();
  }
});
// a bulk action names what it did: tell the dispatcher (status words in the page's language)
document.body.addEventListener("htmx:beforeRequest", (e) => {
  if (e.detail.elt?.id === "desk-bulk" && !queue.querySelector('input[name="ids"]:checked')) {
    e.preventDefault();
    window.wg.toast(_("Check the cases first"));
  }
});
const open = panel.querySelector("[data-case]");
if (open) queue.querySelector(`tr[data-incident-id="${open.dataset.case}"]`)?.classList.add("is-selected");
tick();
document.body.dataset.desk = "ready";
void word;
