/* Wangge map layers: build Leaflet layers from the JSON data blocks embedded in the page.
 * No network access: every layer comes from a JSON data block (script element, id wg-KEY)
 * holding a compact table (see maps/codec.py for the layout). MIT licence (Wangge). */
(function () {
  "use strict";
  function data(id) {
    var el = document.getElementById(id);
    return el ? JSON.parse(el.textContent) : null;
  }
  /* Google encoded polyline (lat/lon, 5 decimals) -> [[lon, lat], ...] */
  function ring(str) {
    var pts = [], i = 0, lat = 0, lon = 0;
    while (i < str.length) {
      var vals = [];
      for (var k = 0; k < 2; k++) {
        var result = 0, shift = 0, b;
        do { b = str.charCodeAt(i++) - 63; result |= (b & 0x1f) << shift; shift += 5; } while (b >= 0x20);
        vals.push(result & 1 ? ~(result >> 1) : result >> 1);
      }
      lat += vals[0]; lon += vals[1];
      pts.push([lon / 1e5, lat / 1e5]);
    }
    return pts;
  }
  /* A table {columns, rows, scale} -> array of objects (lat/lon in degrees, geom as GeoJSON). */
  function records(d) {
    if (!d) return [];
    var scale = d.scale || 100000, cols = d.columns;
    return d.rows.map(function (r) {
      var o = {};
      for (var i = 0; i < cols.length; i++) o[cols[i]] = r[i];
      if (o.lat !== undefined && o.lat !== null) o.lat = o.lat / scale;
      if (o.lon !== undefined && o.lon !== null) o.lon = o.lon / scale;
      if (o.geom !== undefined) {
        o.geom = {type: "MultiPolygon", coordinates: (o.geom || []).map(function (poly) {
          return poly.map(ring);
        })};
      }
      return o;
    });
  }
  function features(id) {
    return {type: "FeatureCollection", features: records(data(id)).map(function (o) {
      var g = o.geom; delete o.geom;
      return {type: "Feature", geometry: g, properties: o};
    })};
  }
  function esc(v) {
    return String(v === null || v === undefined ? "–" : v)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  }
  function pct(v) { return v === null || v === undefined ? null : Math.round(v * 1000) / 10 + "%"; }
  /* tip: [[label_zh, label_en, column, format], ...] */
  function tooltip(title, tip, o) {
    var h = "<b>" + esc(title) + "</b><table class='wg-tip'>";
    tip.forEach(function (t) {
      var v = o[t[2]];
      if (t[3] === "pct") v = pct(v);
      if (t[3] === "bool") v = v ? "是 yes" : "否 no";
      h += "<tr><th>" + esc(t[0]) + " " + esc(t[1]) + "</th><td>" + esc(v) + "</td></tr>";
    });
    return h + "</table>";
  }

  var W = {
    data: data,
    records: records,
    /* Polygons filled with palette[fill] (or opts.fillColor); tooltip rows by opts.tip. */
    polygons: function (id, opts) {
      var tip = opts.tip || [];
      return L.geoJSON(features(id), {
        style: function (f) {
          var p = f.properties;
          var fill = p.fill !== undefined && opts.palette ? opts.palette[p.fill] : (opts.fillColor || "#888");
          return {
            color: opts.color || "#333", weight: opts.weight || 1,
            dashArray: (opts.dashBy && !p[opts.dashBy]) ? "4 4" : (opts.dashArray || null),
            fillColor: fill, fillOpacity: opts.fillOpacity === undefined ? 0.6 : opts.fillOpacity,
            opacity: 0.9
          };
        },
        onEachFeature: function (f, layer) {
          if (tip.length) {
            layer.bindTooltip(tooltip(f.properties[opts.title || "name"], tip, f.properties), {sticky: true});
          }
        },
        interactive: tip.length > 0
      });
    },
    /* City/district/community outlines (not interactive): the offline base layer. */
    outlines: function (id) {
      return L.geoJSON(features(id), {
        interactive: false,
        style: function (f) {
          var lv = f.properties.level;
          return {color: lv === "city" ? "#222" : (lv === "district" ? "#555" : "#999"),
                  weight: lv === "city" ? 3 : (lv === "district" ? 2 : 1),
                  fill: lv === "city", fillColor: "#f4f1ea", fillOpacity: 1,
                  dashArray: lv === "community" ? "3 3" : null};
        }
      });
    },
    /* Rows with lat/lon drawn as circle markers, optionally clustered. */
    points: function (id, opts) {
      var rows = records(data(id));
      var group = opts.cluster ? L.markerClusterGroup({
        showCoverageOnHover: false, chunkedLoading: true, maxClusterRadius: 50,
        iconCreateFunction: function (c) {
          return L.divIcon({html: "<div style='background:" + opts.color + "'>" + c.getChildCount() + "</div>",
                            className: "wg-cluster", iconSize: L.point(30, 30)});
        }
      }) : L.featureGroup();
      var tip = opts.tip || [];
      rows.forEach(function (o) {
        var m = L.circleMarker([o.lat, o.lon], {
          radius: opts.radiusBy ? Math.min(3 + o[opts.radiusBy], 12) : (opts.radius || 5),
          color: opts.color, weight: 1, fillColor: opts.color,
          fillOpacity: opts.hollowBy && !o[opts.hollowBy] ? 0.1 : 0.85
        });
        if (tip.length) m.bindTooltip(tooltip(opts.title || "", tip, o));
        group.addLayer(m);
      });
      return group;
    },
    /* Heat from frames of cells; a time slider when there is more than one frame.
     * Re-binned at every zoom so that hotspots stand out at city and community zoom alike:
     * the cells are summed into screen bins of Leaflet.heat's own size, each bin weighted by
     * (its count / the 99th percentile of the bins)^gamma, capped at 1 (a contrast stretch:
     * no uniform haze far out), and the blob radius follows the size of a heat cell on
     * screen (no lattice of dots up close). */
    heat: function (id, opts, map) {
      var d = data(id) || {frames: [], cell: 0.001, origin: [0, 0]};
      var cell = d.cell, y0 = d.origin[0], x0 = d.origin[1];
      var all = {}, frames = d.frames.map(function (f) {
        var pts = [];
        for (var i = 0; i < f.c.length; i += 3) {
          var k = f.c[i] + "," + f.c[i + 1];
          all[k] = (all[k] || 0) + f.c[i + 2];
          pts.push([(y0 + f.c[i] + 0.5) * cell, (x0 + f.c[i + 1] + 0.5) * cell, f.c[i + 2]]);
        }
        return {t: f.t, pts: pts};
      });
      var allPts = Object.keys(all).map(function (k) {
        var p = k.split(",");
        return [(y0 + (+p[0]) + 0.5) * cell, (x0 + (+p[1]) + 0.5) * cell, all[k]];
      });
      var base = opts.radius || 16, gamma = opts.gamma || 2, top = opts.top || 0.99;
      var ceiling = opts.max || 1.2, current = allPts;
      var layer = L.heatLayer([], {radius: base, blur: opts.blur || 18, max: ceiling, minOpacity: 0.02});
      function tune() {
        var m = layer._map;
        if (!m) return;
        var c = m.getCenter();
        var px = Math.abs(m.latLngToContainerPoint([c.lat + cell, c.lng]).y -
                          m.latLngToContainerPoint([c.lat, c.lng]).y);
        var radius = Math.max(base, Math.round(px * 0.8)), blur = Math.round(radius * 1.1);
        /* Leaflet.heat bins by (radius + blur) / 2 px and scales weights by 2^-(maxZoom - zoom) */
        var g = (radius + blur) / 2;
        var f = 1 / Math.pow(2, Math.max(0, Math.min(m.getMaxZoom() - m.getZoom(), 12)));
        var bins = {};
        current.forEach(function (p) {
          var q = m.latLngToContainerPoint([p[0], p[1]]);
          var k = Math.floor(q.x / g) + "," + Math.floor(q.y / g);
          var b = bins[k] || (bins[k] = [0, 0, 0]);
          b[0] += p[0] * p[2]; b[1] += p[1] * p[2]; b[2] += p[2];
        });
        var keys = Object.keys(bins);
        var v = keys.map(function (k) { return bins[k][2]; }).sort(function (a, b) { return a - b; });
        var hot = v.length ? v[Math.floor(top * (v.length - 1))] : 1;
        layer.wgHot = hot;
        layer.setLatLngs(keys.map(function (k) {
          var b = bins[k], w = Math.min(1, Math.pow(b[2] / hot, gamma));
          return [b[0] / b[2], b[1] / b[2], w / f];
        }));
        layer.setOptions({radius: radius, blur: blur, max: ceiling});
      }
      function show(pts) { current = pts; tune(); }
      layer.on("add", tune);
      if (map) map.on("zoomend", tune);
      if (opts.slider && frames.length > 1 && map) {
        var ctl = L.control({position: "bottomleft"});
        ctl.onAdd = function () {
          var div = L.DomUtil.create("div", "wg-box wg-slider");
          div.innerHTML = "<label>时间 Time: <span>全部 all</span></label><br>" +
            "<input type='range' id='wg-slider' min='0' max='" + frames.length + "' value='0' step='1'>";
          L.DomEvent.disableClickPropagation(div);
          var input = div.querySelector("input"), label = div.querySelector("span");
          input.addEventListener("input", function () {
            var i = parseInt(input.value, 10);
            if (i === 0) {
              show(allPts); label.textContent = "全部 all";
            } else {
              show(frames[i - 1].pts); label.textContent = frames[i - 1].t;
            }
          });
          return div;
        };
        ctl.addTo(map);
      }
      return layer;
    },
    fit: function (map, bounds) {
      if (bounds) map.fitBounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]]);
    }
  };
  window.wangge = W;
  window.wanggeReady = false;
})();
