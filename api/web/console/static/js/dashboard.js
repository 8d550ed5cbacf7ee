// /console/dashboard: the manager's map (heatmap, grids by measure, coverage layers), trends, drill-down.
import { createBaseMap } from "wangge/basemap.js";
import { _, wgFetch } from "wangge/console.js";
import { heatLayer, normaliseHeat, frames } from "wangge/dashboard-heat.js";
import { drawTrends } from "wangge/dashboard-trends.js";

const config = JSON.parse(document.getElementById("wg-dashboard-config").textContent);
const element = document.getElementById("wg-dash-map");
const LENGTH = { district: 6, street: 9, community: 12, grid: 15 };

//: colour has meaning: counts of trouble are calm green at zero, warmer only when positive;
//: shares run red (low: the alarm) → green (high)
export const CLASSES = {
  overdue: {
    field: "overdue",
    classes: [[0, 0, "#cfe8cf", "0"], [1, 2, "#fdcc8a", "1 – 2"], [3, 5, "#fc8d59", "3 – 5"], [6, Infinity, "#d7301f", "≥ 6"]],
  },
  open: {
    field: "open",
    classes: [[0, 0, "#cfe8cf", "0"], [1, 4, "#fee391", "1 – 4"], [5, 9, "#fec44f", "5 – 9"], [10, Infinity, "#d98c0a", "≥ 10"]],
  },
  visit_coverage: {
    field: "visit_coverage",
    classes: [[0, 0.5, "#d7301f", "< 50%"], [0.5, 0.8, "#fc8d59", "50 – 80%"], [0.8, 0.95, "#d9ef8b", "80 – 95%"], [0.95, 1.01, "#66bd63", "≥ 95%"]],
  },
};

function colourOf(measure, value) {
  if (value == null) return "#e0e0e0";
  for (const [lo, hi, colour] of CLASSES[measure].classes) {
    if (measure === "visit_coverage" ? value >= lo && value < hi : value >= lo && value <= hi) return colour;
  }
  return "#e0e0e0";
}

function drillTo(code) {
  const query = new URLSearchParams(config.query);
  if (code) query.set("area", code); else query.delete("area");
  location.assign(`/console/dashboard?${query}`);
}

//: bumped when the cases change: the tiles are cached by the browser for a minute, so a reload
//: asks for them under a new address
let heatVersion = 0;

function heatTiles(since, until) {
  const query = new URLSearchParams({ since, until });
  if (config.item) query.set("item", config.item);
  if (config.category) query.set("category", config.category);
  if (heatVersion) query.set("v", String(heatVersion));
  return [`${location.origin}/tiles/incidents/{z}/{x}/{y}.mvt?${query}`];
}

function legend(measure) {
  const box = document.getElementById("wg-legend");
  box.replaceChildren();
  const title = document.createElement("strong");
  title.textContent = document.querySelector(`#wg-measure option[value="${measure}"]`).textContent;
  box.append(title);
  for (const [, , colour, label] of CLASSES[measure].classes) {
    const item = document.createElement("span");
    item.className = "wg-legend-item";
    item.dataset.colour = colour;
    const swatch = document.createElement("i");
    swatch.style.background = colour;
    item.append(swatch, document.createTextNode(label));
    box.append(item);
  }
  const heat = document.createElement("span");
  heat.className = "wg-legend-heat";
  heat.textContent = _("Heatmap: case density (darkest = densest)");
  box.append(heat);
}

function gridColours(map, grids, measure) {
  const expression = ["match", ["get", "code"]];
  for (const g of grids) {
    const value = measure === "visit_coverage" ? (g.buildings ? g.visited / g.buildings : null) : g[measure];
    expression.push(g.code, colourOf(measure, value));
  }
  expression.push("rgba(0,0,0,0)");
  map.setPaintProperty("grids-fill", "fill-color", grids.length ? expression : "rgba(0,0,0,0)");
  map.setPaintProperty("grids-fill", "fill-opacity", 0.55);
  legend(measure);
}

function info(map, grids) {
  const byCode = new Map(grids.map((g) => [g.code, g]));
  const box = document.createElement("div");
  box.className = "wg-map-info";
  box.hidden = true;
  element.append(box);
  map.on("mousemove", "grids-fill", (e) => {
    const f = e.features?.[0];
    const g = f && byCode.get(f.properties.code);
    if (!g) { box.hidden = true; return; }
    box.hidden = false;
    const share = g.buildings ? `${Math.round((100 * g.visited) / g.buildings)}%` : "–";
    const worker = _("Grid worker");
    const duty = _("on duty");
    const open = _("Open cases");
    const overdue = _("Overdue");
    const coverage = _("Visit coverage");
    const must = _("Must-visit households not visited");
    const branch = _("Grid party branch");
    box.textContent = [
      `${g.name} (${g.code})`,
      `${worker}: ${g.worker || "–"}${g.on_duty ? " · " + duty : ""}`,
      `${open}: ${g.open} · ${overdue}: ${g.overdue}`,
      `${coverage}: ${share} · ${must}: ${g.must_visit_gaps}`,
      `${branch}: ${g.branch || "–"}`,
    ].join("\n");
  });
  map.on("mouseleave", "grids-fill", () => { box.hidden = true; });
}

function coverageLayers(map, data) {
  map.addSource("outlines", { type: "geojson", data: data.outlines });
  map.addLayer({ id: "outlines", type: "line", source: "outlines", paint: { "line-color": "#23404c", "line-width": 2 } });
  map.addSource("committees", { type: "geojson", data: data.party.committees });
  map.addLayer({
    id: "party-committees", type: "line", source: "committees", layout: { visibility: "none" },
    paint: { "line-color": "#6a1b9a", "line-width": 2.5, "line-dasharray": [2, 1] },
  });
  map.addSource("groups", { type: "geojson", data: data.party.groups });
  map.addLayer({
    id: "party-groups", type: "circle", source: "groups", layout: { visibility: "none" },
    paint: {
      "circle-color": "#6a1b9a", "circle-radius": ["interpolate", ["linear"], ["zoom"], 11, 2, 16, 6],
      "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
    },
  });
  map.addSource("gaps", { type: "geojson", data: data.gaps });
  map.addLayer({
    id: "gaps", type: "circle", source: "gaps", layout: { visibility: "none" },
    paint: {
      "circle-color": ["case", [">", ["get", "must_visit"], 0], "#b3261e", "#f08c00"],
      "circle-radius": ["case", [">", ["get", "must_visit"], 0], 6, 3.5],
      "circle-stroke-color": "#ffffff", "circle-stroke-width": 1,
    },
  });
  map.addSource("people", { type: "geojson", data: data.people });
  map.addLayer({
    id: "people", type: "circle", source: "people", layout: { visibility: "none" },
    paint: { "circle-color": "#1b7f3b", "circle-radius": 4.5, "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.5 },
  });
}

const GROUPS = {
  heat: ["heat"],
  grids: ["grids-fill"],
  gaps: ["gaps"],
  people: ["people"],
  party: ["party-committees", "party-groups"],
};

function wireLayers(map) {
  for (const box of document.querySelectorAll("#wg-layers input[type=checkbox]")) {
    const apply = () => {
      for (const id of GROUPS[box.value]) {
        if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", box.checked ? "visible" : "none");
      }
    };
    box.addEventListener("change", apply);
    apply();
  }
}

function wireSlider(map) {
  const steps = frames(config.first, config.last);
  const slider = document.getElementById("wg-time");
  const label = document.getElementById("wg-time-label");
  slider.max = String(steps.length);
  slider.addEventListener("input", () => {
    const i = Number(slider.value);
    const step = i === 0 ? null : steps[i - 1];
    label.textContent = step ? step.label : _("Whole period");
    const source = map.getSource("heat");
    source.setTiles(step ? heatTiles(step.since, step.until) : heatTiles(config.since, config.until));
    element.dataset.frame = String(i);
  });
}

//: a network failure of the coverage request (no answer at all, e.g. a dropped connection) is
//: tried again this many times, RETRY_DELAY ms apart; an answer with an error status is not
const RETRIES = 2;
const RETRY_DELAY = 800;

async function coverageData() {
  for (let attempt = 0; ; attempt++) {
    try {
      return await (await wgFetch(config.coverage)).json();
    } catch (error) {
      if (error.status || leaving || attempt >= RETRIES) throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY));
    }
  }
}

async function start() {
  const map = await createBaseMap(element, { bounds: config.bounds || undefined });
  window.wgDashboard = { map, config };
  // the base style's case circles give way to the heatmap
  for (const id of ["incident-clusters", "incidents"]) map.removeLayer(id);
  if (config.code) {
    const length = config.code.length;
    map.setFilter("grids-fill", ["==", ["slice", ["get", "code"], 0, length], config.code]);
    map.setFilter("grids-line", ["==", ["slice", ["get", "code"], 0, length], config.code]);
    map.setFilter("grids-label", ["==", ["slice", ["get", "code"], 0, length], config.code]);
  }
  map.addSource("heat", { type: "vector", tiles: heatTiles(config.since, config.until), minzoom: 0, maxzoom: 16 });
  map.addLayer(heatLayer("heat"), "grids-line");
  normaliseHeat(map, "heat", (stats) => {
    window.wgDashboard.heat = stats;
    element.dataset.heatMax = String(stats.max);
  });
  const data = await coverageData();
  window.wgDashboard.coverage = data;
  coverageLayers(map, data);
  const measure = document.getElementById("wg-measure");
  gridColours(map, data.grids, measure.value);
  measure.addEventListener("change", () => gridColours(map, data.grids, measure.value));
  info(map, data.grids);
  wireLayers(map);
  wireSlider(map);
  if (config.childLevel) {
    map.on("click", "grids-fill", (e) => {
      const code = e.features?.[0]?.properties?.code;
      if (code) drillTo(String(code).slice(0, LENGTH[config.childLevel]));
    });
    map.on("mouseenter", "grids-fill", () => { map.getCanvas().style.cursor = "pointer"; });
    map.on("mouseleave", "grids-fill", () => { map.getCanvas().style.cursor = ""; });
  }
  map.once("idle", () => { element.dataset.ready = "true"; });
  // the heat follows the cases too, more slowly than the tiles (a reload fetches every tile on screen)
  let heatAt = 0;
  let heatPending = null;
  const reloadHeat = () => {
    if (heatPending) return;
    heatPending = setTimeout(() => {
      heatPending = null;
      heatAt = Date.now();
      heatVersion += 1;
      const source = map.getSource("heat");
      source.setTiles(source.tiles.map((url) =>
        /[?&]v=\d+/.test(url) ? url.replace(/([?&])v=\d+/, `$1v=${heatVersion}`) : `${url}&v=${heatVersion}`));
    }, Math.max(0, heatAt + HEAT_EVERY - Date.now()));
  };
  document.body.addEventListener("wg:kpi", reloadHeat);
}

//: the KPI tiles follow the cases: a change in the page's area (the event stream's rows name their
//: community) asks for the tiles again, at most once per TILE_DELAY ms (changes meanwhile wait for it)
const TILE_DELAY = 1500;
//: the heat layer reloads at most once per HEAT_EVERY ms
const HEAT_EVERY = 10000;

export function touchesArea(code, rows) {
  if (!code) return true;
  const prefix = code.length > 12 ? code.slice(0, 12) : code;
  return (rows || []).some((row) => typeof row.community === "string" && row.community.startsWith(prefix));
}

function liveTiles() {
  let pending = null;
  const refresh = () => {
    if (pending) return;
    pending = setTimeout(() => {
      pending = null;
      document.body.dispatchEvent(new CustomEvent("wg:kpi"));
    }, TILE_DELAY);
  };
  document.body.addEventListener("wg:incident", (e) => { if (touchesArea(config.code, e.detail?.rows)) refresh(); });
  document.body.addEventListener("wg:bulk", (e) => {
    if (touchesArea(config.code, [{ community: e.detail?.community }])) refresh();
  });
  document.body.addEventListener("wg:reset", refresh);
  document.body.addEventListener("htmx:afterSwap", (e) => {
    if (e.target?.id === "wg-tiles") {
      document.body.dataset.tilesRefreshed = String(Number(document.body.dataset.tilesRefreshed || 0) + 1);
    }
  });
}

liveTiles();
drawTrends(document.getElementById("wg-trends"), config);
// a drill-down leaves the page while its layers load: the browser aborts those fetches,
// which is not an error of this page (beforeunload comes before the abort, pagehide after)
let leaving = false;
for (const name of ["beforeunload", "pagehide"]) window.addEventListener(name, () => { leaving = true; });
const run = () => start().catch((error) => {
  if (leaving) return;
  element.dataset.ready = "error";
  console.error(error);
});
// a page the browser loads ahead of a click (prerendering) starts once it is shown
if (document.prerendering) document.addEventListener("prerenderingchange", run, { once: true });
else run();
