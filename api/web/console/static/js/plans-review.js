// /console/plans/{id}: a plan over the plan in force on the map, the table per grid, edits, publish.
//
// The map shows the plan in force from the server's tiles (dashed outlines) and this plan's grids
// as GeoJSON (/console/plans/{id}/grids.json): flagged grids in amber, buildings that change grid
// in magenta. Edits are sent as JSON with the version the page shows; the server answers the
// refreshed review partial (or the same partial with the reason a change was refused), which
// replaces #pl-review; the map then reloads the grids.
import { createBaseMap } from "wangge/basemap.js";
import { wg, _ } from "wangge/console.js";
import { TerraDraw, TerraDrawPolygonMode } from "terra-draw";
import { TerraDrawMapLibreGLAdapter } from "terra-draw-maplibre-gl-adapter";

const element = document.getElementById("pl-map");
const planId = element.dataset.planId;
const FLAG = "#e0a100";
const DRAFT = "#1f6f8b";
const MOVED = "#c2185b";
const PICKED = "#1e4fd8";

const state = { tool: null, picked: new Set(), data: null, map: null, draw: null, polygon: null };

function readData() {
  const node = document.getElementById("pl-data");
  state.data = node ? JSON.parse(node.textContent) : null;
  return state.data;
}

function bboxOf(fc) {
  let w = 180, s = 90, e = -180, n = -90;
  const walk = (c) => {
    if (typeof c[0] === "number") {
      w = Math.min(w, c[0]); e = Math.max(e, c[0]); s = Math.min(s, c[1]); n = Math.max(n, c[1]);
    } else c.forEach(walk);
  };
  fc.features.forEach((f) => walk(f.geometry.coordinates));
  return [w, s, e, n];
}

async function loadGrids(map, fit) {
  const response = await wg.fetch(`/console/plans/${planId}/grids.json`);
  const fc = await response.json();
  const flags = new Map((state.data?.grids || []).map((g) => [g.code, g.flags]));
  for (const f of fc.features) {
    const fl = flags.get(f.properties.code) || [];
    f.properties.flagged = fl.some((x) => x !== "no_worker");
    f.properties.label = `${f.properties.code.slice(12)}\n${f.properties.households}`;
  }
  map.getSource("plan-grids").setData(fc);
  if (fit && fc.features.length) map.fitBounds(bboxOf(fc), { padding: 30, animate: false });
  state.grids = fc;
  element.dataset.grids = String(fc.features.length);
  return fc;
}

function paintBuildings(map) {
  const moved = state.data?.changed_buildings || [];
  map.setFilter("plan-moved", ["in", ["get", "id"], ["literal", moved]]);
  map.setFilter("plan-picked", ["in", ["get", "id"], ["literal", [...state.picked]]]);
}

function addLayers(map) {
  // the plan in force (tiles): dashed outlines, no fill
  map.setPaintProperty("grids-fill", "fill-opacity", 0);
  map.setPaintProperty("grids-line", "line-color", "#5b5b5b");
  map.setPaintProperty("grids-line", "line-dasharray", [2, 2]);
  map.setLayoutProperty("grids-label", "visibility", "none");
  map.setLayoutProperty("incidents", "visibility", "none");
  map.setLayoutProperty("incident-clusters", "visibility", "none");
  map.addSource("plan-grids", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id: "plan-fill", type: "fill", source: "plan-grids",
    paint: { "fill-color": ["case", ["get", "flagged"], FLAG, DRAFT], "fill-opacity": ["case", ["get", "flagged"], 0.35, 0.12] },
  }, "buildings");
  map.addLayer({
    id: "plan-selected", type: "fill", source: "plan-grids", filter: ["==", ["get", "code"], ""],
    paint: { "fill-color": PICKED, "fill-opacity": 0.18 },
  }, "buildings");
  map.addLayer({
    id: "plan-moved", type: "fill", source: "buildings", "source-layer": "buildings",
    filter: ["in", ["get", "id"], ["literal", []]], paint: { "fill-color": MOVED, "fill-outline-color": "#7a0f3c" },
  });
  map.addLayer({
    id: "plan-picked", type: "fill", source: "buildings", "source-layer": "buildings",
    filter: ["in", ["get", "id"], ["literal", []]], paint: { "fill-color": PICKED, "fill-outline-color": "#0b2a80" },
  });
  map.addLayer({
    id: "plan-line", type: "line", source: "plan-grids",
    paint: { "line-color": ["case", ["get", "flagged"], "#a86f00", DRAFT], "line-width": 2.2 },
  });
  map.addLayer({
    id: "plan-label", type: "symbol", source: "plan-grids",
    layout: { "text-field": ["get", "label"], "text-size": 12, "text-font": ["sans-serif"] },
    paint: { "text-color": "#10323f", "text-halo-color": "#ffffff", "text-halo-width": 1.5 },
  });
}

// ---------------------------------------------------------------- edit tools

const help = {
  move: _("Click buildings on the map to pick them, choose the grid they go to, then Apply."),
  boundary: _("Choose the grid, then click its new boundary on the map point by point; click the first point to close it, then Apply."),
  merge: _("Choose the grid that stays and the neighbouring grid merged into it, then Apply."),
  split: _("Choose the grid to split in two balanced halves, then Apply."),
};

function fillGridSelects() {
  const codes = (state.data?.grids || []).map((g) => g.code);
  for (const id of ["pl-grid-a", "pl-grid-b"]) {
    const select = document.getElementById(id);
    if (!select) continue;
    const keep = select.value;
    select.replaceChildren(...codes.map((code) => {
      const g = state.data.grids.find((x) => x.code === code);
      const option = new Option(`${code.slice(12)} · ${g.households}`, code);
      return option;
    }));
    if (codes.includes(keep)) select.value = keep;
  }
}

function updateTools() {
  const apply = document.getElementById("pl-apply");
  if (!apply) return;
  const tool = state.tool;
  document.querySelectorAll("[data-tool]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.tool === tool)));
  document.getElementById("pl-tool-help").textContent = tool ? help[tool] : _("Pick a tool. Click a grid on the map to choose it.");
  document.getElementById("pl-grid-b-label").hidden = tool !== "merge";
  document.getElementById("pl-grid-a-label").firstChild.textContent =
    tool === "move" ? _("Move to grid") + " " : tool === "merge" ? _("Grid that stays") + " " : _("Grid") + " ";
  const picked = document.getElementById("pl-picked");
  picked.dataset.count = String(state.picked.size);
  picked.textContent = tool === "move" ? _("Buildings picked") + ": " + state.picked.size : "";
  let ready = false;
  if (tool === "move") ready = state.picked.size > 0;
  else if (tool === "boundary") ready = state.polygon !== null;
  else if (tool === "merge") ready = document.getElementById("pl-grid-a").value !== document.getElementById("pl-grid-b").value;
  else if (tool === "split") ready = true;
  apply.disabled = !ready;
  const gridA = document.getElementById("pl-grid-a").value;
  state.map?.setFilter("plan-selected", ["==", ["get", "code"], tool ? gridA : ""]);
}

function clearTool() {
  state.picked.clear();
  state.polygon = null;
  if (state.draw) {
    state.draw.clear();
    state.draw.setMode(state.tool === "boundary" ? "polygon" : "static");
  }
  if (state.map) paintBuildings(state.map);
  updateTools();
}

function setTool(tool) {
  state.tool = state.tool === tool ? null : tool;
  clearTool();
}

async function send(url, body) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": wg.csrf, "HX-Request": "true", Accept: "text/html" },
    body: JSON.stringify(body),
  });
  const type = response.headers.get("content-type") || "";
  if (!type.includes("text/html")) {
    let message = _("The request failed") + " (" + response.status + ")";
    try {
      const detail = (await response.json()).detail;
      message = (Array.isArray(detail) ? detail[0]?.msg : detail) || message;
    } catch (e) { /* not JSON */ }
    wg.toast(message);
    return;
  }
  const box = document.getElementById("pl-review");
  box.innerHTML = await response.text();
  htmx.process(box);
  await refresh();
}

function editBody() {
  const a = document.getElementById("pl-grid-a").value;
  const version = state.data.version;
  if (state.tool === "move") return { op: "move", buildings: [...state.picked], to: a, version };
  if (state.tool === "merge") return { op: "merge", grids: [a, document.getElementById("pl-grid-b").value], version };
  if (state.tool === "split") return { op: "split", grid: a, version };
  return { op: "boundary", grid: a, polygon: state.polygon, crs: "wgs84", version };
}

function wireTools(map) {
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => setTool(b.dataset.tool)));
  document.getElementById("pl-grid-a").addEventListener("change", updateTools);
  document.getElementById("pl-grid-b").addEventListener("change", updateTools);
  document.getElementById("pl-clear").addEventListener("click", clearTool);
  document.getElementById("pl-apply").addEventListener("click", async () => {
    const apply = document.getElementById("pl-apply");
    apply.disabled = true;
    await send(`/console/plans/${planId}/edits`, editBody());
  });
  document.getElementById("pl-undo").addEventListener("click", () => send(`/console/plans/${planId}/undo`, { version: state.data.version }));

  const draw = new TerraDraw({
    adapter: new TerraDrawMapLibreGLAdapter({ map }),
    modes: [new TerraDrawPolygonMode()],
  });
  draw.start();
  draw.setMode("static");
  draw.on("finish", (id) => {
    const feature = draw.getSnapshot().find((f) => f.id === id);
    if (feature) state.polygon = feature.geometry;
    element.dataset.drawn = feature ? JSON.stringify(feature.geometry.coordinates[0]) : "";
    updateTools();
  });
  state.draw = draw;

  map.on("click", (event) => {
    if (state.tool === "boundary") return;
    if (state.tool === "move") {
      const hit = map.queryRenderedFeatures(event.point, { layers: ["buildings"] })[0];
      if (hit) {
        const id = hit.properties.id;
        if (state.picked.has(id)) state.picked.delete(id); else state.picked.add(id);
        paintBuildings(map);
        updateTools();
        return;
      }
    }
    if (state.tool !== "move") {
      const grid = map.queryRenderedFeatures(event.point, { layers: ["plan-fill"] })[0];
      if (grid) {
        const select = document.getElementById("pl-grid-a");
        if (state.tool === "merge" && select.value && select.value !== grid.properties.code) {
          document.getElementById("pl-grid-b").value = grid.properties.code;
        } else select.value = grid.properties.code;
        updateTools();
      }
    }
  });
}

// ---------------------------------------------------------------- refresh after a swap

async function refresh() {
  readData();
  fillGridSelects();
  clearTool();
  if (state.map) {
    await loadGrids(state.map, false);
    paintBuildings(state.map);
  }
  element.dataset.version = String(state.data?.version ?? "");
}

document.body.addEventListener("htmx:afterSwap", (event) => {
  if (event.detail.target.id === "pl-dialog-body") {
    const dialog = document.getElementById("pl-dialog");
    if (!dialog.open) dialog.showModal();
  } else if (event.detail.target.id === "pl-review") {
    refresh();
  }
});
document.getElementById("pl-review").addEventListener("click", (event) => {
  const button = event.target.closest("[data-zoom-grid]");
  if (!button || !state.map || !state.grids) return;
  const feature = state.grids.features.find((f) => f.properties.code === button.dataset.zoomGrid);
  if (feature) state.map.fitBounds(bboxOf({ features: [feature] }), { padding: 60 });
  const select = document.getElementById("pl-grid-a");
  if (select) { select.value = button.dataset.zoomGrid; updateTools(); }
});

readData();
createBaseMap(element).then(async (map) => {
  state.map = map;
  addLayers(map);
  await loadGrids(map, true);
  paintBuildings(map);
  if (state.data?.editable && document.getElementById("pl-apply")) {
    fillGridSelects();
    wireTools(map);
    updateTools();
  }
  window.wanggePlanMap = map;
  element.dataset.version = String(state.data?.version ?? "");
  element.dataset.ready = "true";
}).catch((error) => {
  element.dataset.ready = "error";
  console.error(error);
});
