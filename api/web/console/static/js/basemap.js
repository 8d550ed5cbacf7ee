// The base map component: MapLibre GL JS on the server's own vector tiles.
//
//   import { createBaseMap } from "wangge/basemap.js";
//   const map = await createBaseMap(element, { bounds: [w, s, e, n] });
//
// The style is written here: no style server, no sprites and no "glyphs" key, so labels
// are drawn with the device's own fonts (localIdeographFontFamily for Chinese) and the map
// works on a closed network. Tiles come from /tiles/{layer}/{z}/{x}/{y}.mvt on this origin;
// the browser sends the session cookie with them (no token in any URL).
import { Map, NavigationControl, ScaleControl } from "maplibre-gl";
import { _ } from "wangge/console.js";

export const FONT_FAMILY = '"Noto Sans CJK SC", "WenQuanYi Micro Hei", "Microsoft YaHei", "PingFang SC", sans-serif';

//: colours with a meaning: open cases amber, overdue red, closed grey; grids in quiet tones
export const COLOURS = {
  background: "#f3f1ec",
  building: "#d8d2c4",
  buildingLine: "#b9b09c",
  gridLine: "#4f6d7a",
  gridFill: ["#a8c5d1", "#c4d7b2", "#e3d5b8", "#cdb4db", "#b8d8d8", "#e7c8a0"],
  open: "#e0a100",
  overdue: "#c62828",
  closed: "#8c8c8c",
  cluster: "#2f6f8f",
  person: "#1b7f3b",
};

function tiles(layer) {
  return [`${location.origin}/tiles/${layer}/{z}/{x}/{y}.mvt`];
}

// the style: background, buildings, grids (fill by id, outline, name), cases (clusters, points)
export function baseStyle() {
  const palette = ["match", ["%", ["to-number", ["get", "id"], 0], 6]];
  COLOURS.gridFill.forEach((c, i) => palette.push(i, c));
  palette.push(COLOURS.gridFill[0]);
  return {
    version: 8,
    name: "wangge-base",
    sources: {
      grids: { type: "vector", tiles: tiles("grids"), minzoom: 0, maxzoom: 16 },
      buildings: { type: "vector", tiles: tiles("buildings"), minzoom: 14, maxzoom: 16 },
      incidents: { type: "vector", tiles: tiles("incidents"), minzoom: 0, maxzoom: 16 },
    },
    layers: [
      { id: "background", type: "background", paint: { "background-color": COLOURS.background } },
      {
        id: "grids-fill", type: "fill", source: "grids", "source-layer": "grids",
        paint: { "fill-color": palette, "fill-opacity": 0.35 },
      },
      {
        id: "buildings", type: "fill", source: "buildings", "source-layer": "buildings", minzoom: 14,
        paint: { "fill-color": COLOURS.building, "fill-outline-color": COLOURS.buildingLine },
      },
      {
        id: "grids-line", type: "line", source: "grids", "source-layer": "grids",
        paint: {
          "line-color": COLOURS.gridLine,
          "line-width": ["interpolate", ["linear"], ["zoom"], 10, 0.4, 14, 1.2, 17, 2.5],
        },
      },
      {
        id: "grids-label", type: "symbol", source: "grids", "source-layer": "grids", minzoom: 14,
        layout: { "text-field": ["get", "name"], "text-size": 11, "text-font": ["sans-serif"], "text-max-width": 6 },
        paint: { "text-color": "#23404c", "text-halo-color": "#ffffff", "text-halo-width": 1.2 },
      },
      {
        id: "incident-clusters", type: "circle", source: "incidents", "source-layer": "incidents",
        maxzoom: 15, filter: ["has", "count"],
        paint: {
          "circle-color": ["case", [">", ["get", "open"], 0], COLOURS.open, COLOURS.closed],
          "circle-radius": ["interpolate", ["linear"], ["sqrt", ["get", "count"]], 1, 4, 10, 14, 40, 26],
          "circle-opacity": 0.75,
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": 1,
        },
      },
      {
        id: "incidents", type: "circle", source: "incidents", "source-layer": "incidents",
        minzoom: 15, filter: ["!", ["has", "count"]],
        paint: {
          "circle-color": [
            "case",
            ["==", ["get", "overdue"], true], COLOURS.overdue,
            ["==", ["get", "open"], true], COLOURS.open,
            COLOURS.closed,
          ],
          "circle-radius": ["case", ["==", ["get", "open"], true], 6, 3.5],
          "circle-opacity": ["case", ["==", ["get", "open"], true], 1, 0.55],
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": ["case", ["==", ["get", "open"], true], 1.5, 0.5],
        },
      },
    ],
  };
}

// start a map in `container`; resolves once the style and first tiles are loaded
export function createBaseMap(container, options = {}) {
  const bounds = options.bounds || JSON.parse(container.dataset.bounds || "null");
  const map = new Map({
    container,
    style: baseStyle(),
    bounds: bounds || undefined,
    center: bounds ? undefined : [118.5, 31.7],
    zoom: bounds ? undefined : 10,
    fitBoundsOptions: { padding: 20 },
    localIdeographFontFamily: FONT_FAMILY,
    attributionControl: false,
    maxZoom: 19,
    // nothing leaves the server: a request for another origin is refused and reported
    transformRequest: (url) => {
      if (new URL(url, location.href).origin !== location.origin) {
        console.error(`refused a map request outside this server: ${url}`);
        return { url: "about:blank" };
      }
      return { url, credentials: "same-origin" };
    },
    ...options.map,
  });
  map.addControl(new NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new ScaleControl({ unit: "metric" }), "bottom-left");
  map.getCanvas().setAttribute("aria-label", _("Map"));
  return new Promise((resolve, reject) => {
    map.once("load", () => resolve(map));
    map.once("error", (e) => reject(e.error || e));
  });
}

// a GeoJSON layer of live points (people, new cases) that screens update from wg:* events
export function livePoints(map, id, colour) {
  map.addSource(id, { type: "geojson", data: { type: "FeatureCollection", features: [] } });
  map.addLayer({
    id, type: "circle", source: id,
    paint: {
      "circle-color": colour, "circle-radius": 5,
      "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.5,
    },
  });
  const features = new globalThis.Map();
  return {
    upsert(rows) {
      for (const row of rows) {
        if (row.x == null || row.y == null) continue;
        features.set(row.id, {
          type: "Feature", id: row.id,
          geometry: { type: "Point", coordinates: [row.x, row.y] },
          properties: { ...row },
        });
      }
      map.getSource(id).setData({ type: "FeatureCollection", features: [...features.values()] });
    },
    get size() { return features.size; },
  };
}
