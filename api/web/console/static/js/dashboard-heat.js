// The dashboard's heatmap: MapLibre's heatmap layer over the server's own incident tiles
// (clusters below z15 weighted by their count, single cases above), with a radius that grows
// with the zoom and an intensity set from the data on screen so that the densest place reaches
// the top of the ramp and the typical ones stay pale: hotspots stand out at city zoom and at
// community zoom alike, never a uniform haze.
import { _ } from "wangge/console.js";

//: MapLibre's heatmap kernel: weight · intensity · GAUSS · exp(-4.5 (d / radius)²) (heatmap.fragment.glsl)
const GAUSS = 0.3989422804014327;
//: density → colour (transparent → pale yellow → orange → magenta → deep purple: distinct from
//: the grids' alarm reds)
export const RAMP = [
  0, "rgba(252,253,191,0)",
  0.08, "rgba(252,253,191,0.55)",
  0.3, "#fdb47a",
  0.55, "#f1605d",
  0.8, "#b5367a",
  1, "#3b0f70",
];

export function radiusAt(zoom) {
  // pixels: 14 at city zoom, ≈ 120 m at community zoom
  if (zoom <= 10) return 12;
  if (zoom >= 17) return 60;
  const stops = [[10, 12], [12, 16], [14, 22], [15, 26], [16, 40], [17, 60]];
  for (let i = 1; i < stops.length; i++) {
    const [z1, r1] = stops[i];
    const [z0, r0] = stops[i - 1];
    if (zoom <= z1) return r0 + ((r1 - r0) * (zoom - z0)) / (z1 - z0);
  }
  return 60;
}

export function heatLayer(source) {
  const radius = ["interpolate", ["linear"], ["zoom"], 10, 12, 12, 16, 14, 22, 15, 26, 16, 40, 17, 60];
  return {
    id: "heat", type: "heatmap", source, "source-layer": "incidents",
    paint: {
      "heatmap-weight": ["coalesce", ["get", "count"], 1],
      "heatmap-intensity": 0.05,
      "heatmap-radius": radius,
      "heatmap-color": ["interpolate", ["linear"], ["heatmap-density"], ...RAMP],
      "heatmap-opacity": ["interpolate", ["linear"], ["zoom"], 10, 0.85, 16, 0.7],
    },
  };
}

// the loaded features of the heat source on screen, deduplicated (tiles repeat their buffer)
export function screenPoints(map, source) {
  const seen = new Set();
  const out = [];
  const width = map.getCanvas().clientWidth;
  const height = map.getCanvas().clientHeight;
  for (const f of map.querySourceFeatures(source, { sourceLayer: "incidents" })) {
    if (f.geometry.type !== "Point") continue;
    const [lon, lat] = f.geometry.coordinates;
    const weight = f.properties.count ?? 1;
    const key = f.properties.id != null ? `i${f.properties.id}` : `${lon.toFixed(6)},${lat.toFixed(6)},${weight}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const p = map.project([lon, lat]);
    if (p.x < -60 || p.y < -60 || p.x > width + 60 || p.y > height + 60) continue;
    out.push({ x: p.x, y: p.y, w: weight, lon, lat });
  }
  return out;
}

// kernel density (intensity 1) at each point, as MapLibre draws it; binned for speed
export function densities(points, radius) {
  const cell = radius;
  const bins = new Map();
  for (const p of points) {
    const k = `${Math.floor(p.x / cell)},${Math.floor(p.y / cell)}`;
    if (!bins.has(k)) bins.set(k, []);
    bins.get(k).push(p);
  }
  const r2 = radius * radius;
  return points.map((p) => {
    const cx = Math.floor(p.x / cell);
    const cy = Math.floor(p.y / cell);
    let sum = 0;
    for (let dx = -1; dx <= 1; dx++) {
      for (let dy = -1; dy <= 1; dy++) {
        for (const q of bins.get(`${cx + dx},${cy + dy}`) || []) {
          const d2 = (p.x - q.x) ** 2 + (p.y - q.y) ** 2;
          if (d2 < r2) sum += q.w * GAUSS * Math.exp((-4.5 * d2) / r2);
        }
      }
    }
    return sum;
  });
}

// keep the intensity at 1 / (the densest place on screen): the top of the ramp is reached there
export function normaliseHeat(map, source, report) {
  let busy = false;
  const update = () => {
    if (busy || !map.getLayer("heat")) return;
    const points = screenPoints(map, source);
    if (!points.length) return;
    const radius = radiusAt(map.getZoom());
    const dens = densities(points, radius);
    let best = 0;
    for (let i = 1; i < dens.length; i++) if (dens[i] > dens[best]) best = i;
    const max = dens[best];
    const intensity = max > 0 ? 1 / max : 1;
    const now = map.getPaintProperty("heat", "heatmap-intensity");
    report({ max, intensity, radius, points: points.length, densest: [points[best].lon, points[best].lat] });
    if (typeof now !== "number" || Math.abs(now - intensity) / intensity > 0.02) {
      busy = true;
      map.setPaintProperty("heat", "heatmap-intensity", intensity);
      map.once("idle", () => { busy = false; });
    }
  };
  map.on("idle", update);
}

// the time slider's frames: weeks for a period up to 92 days, months otherwise
export function frames(first, last) {
  const out = [];
  const start = new Date(`${first}T00:00:00+08:00`);
  const end = new Date(`${last}T00:00:00+08:00`);
  end.setUTCDate(end.getUTCDate() + 1);
  const days = (end - start) / 86400000;
  const iso = (d) => new Date(d.getTime()).toISOString().replace(".000Z", "Z");
  const day = (d) => new Date(d.getTime() + 8 * 3600000).toISOString().slice(0, 10);
  const weekOf = _("Week of");
  if (days <= 92) {
    for (let t = new Date(start); t < end; t = new Date(t.getTime() + 7 * 86400000)) {
      const next = new Date(Math.min(t.getTime() + 7 * 86400000, end.getTime()));
      out.push({ since: iso(t), until: iso(next), label: `${weekOf} ${day(t)}` });
    }
    return out;
  }
  // months in Beijing time
  const local = new Date(start.getTime() + 8 * 3600000);
  let y = local.getUTCFullYear();
  let m = local.getUTCMonth();
  let t = start;
  while (t < end) {
    m += 1;
    if (m === 12) { m = 0; y += 1; }
    const next = new Date(Math.min(Date.UTC(y, m, 1) - 8 * 3600000, end.getTime()));
    out.push({ since: iso(t), until: iso(next), label: day(t).slice(0, 7) });
    t = next;
  }
  return out;
}
