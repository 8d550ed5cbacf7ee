// /console/plans/compare: two plans of one community side by side, on two maps that move together.
import { createBaseMap } from "wangge/basemap.js";
import { wg } from "wangge/console.js";

const box = document.querySelector(".pl-compare");

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

async function side(element, moved) {
  const map = await createBaseMap(element);
  map.setPaintProperty("grids-fill", "fill-opacity", 0);
  map.setPaintProperty("grids-line", "line-dasharray", [2, 2]);
  map.setLayoutProperty("grids-label", "visibility", "none");
  map.setLayoutProperty("incidents", "visibility", "none");
  map.setLayoutProperty("incident-clusters", "visibility", "none");
  const fc = await (await wg.fetch(`/console/plans/${element.dataset.planId}/grids.json`)).json();
  for (const f of fc.features) f.properties.label = `${f.properties.code.slice(12)}\n${f.properties.households}`;
  map.addSource("plan-grids", { type: "geojson", data: fc });
  map.addLayer({ id: "plan-fill", type: "fill", source: "plan-grids", paint: { "fill-color": "#1f6f8b", "fill-opacity": 0.12 } }, "buildings");
  map.addLayer({
    id: "plan-moved", type: "fill", source: "buildings", "source-layer": "buildings",
    filter: ["in", ["get", "id"], ["literal", moved]], paint: { "fill-color": "#c2185b" },
  });
  map.addLayer({ id: "plan-line", type: "line", source: "plan-grids", paint: { "line-color": "#1f6f8b", "line-width": 2 } });
  map.addLayer({
    id: "plan-label", type: "symbol", source: "plan-grids",
    layout: { "text-field": ["get", "label"], "text-size": 12, "text-font": ["sans-serif"] },
    paint: { "text-color": "#10323f", "text-halo-color": "#ffffff", "text-halo-width": 1.5 },
  });
  if (fc.features.length) map.fitBounds(bboxOf(fc), { padding: 20, animate: false });
  await new Promise((resolve) => map.once("idle", resolve));
  element.dataset.ready = "true";
  return map;
}

if (box) {
  const moved = JSON.parse(box.dataset.moved || "[]");
  Promise.all([side(document.getElementById("pl-map-a"), moved), side(document.getElementById("pl-map-b"), moved)])
    .then(([a, b]) => {
      // move together: whichever the planner drags leads
      let syncing = false;
      const follow = (from, to) => from.on("move", () => {
        if (syncing) return;
        syncing = true;
        to.jumpTo({ center: from.getCenter(), zoom: from.getZoom() });
        syncing = false;
      });
      follow(a, b);
      follow(b, a);
      window.wanggeCompareMaps = [a, b];
    })
    .catch((error) => console.error(error));
}
