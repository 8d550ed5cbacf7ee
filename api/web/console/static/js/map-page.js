// /console/map: the base map with cases and people changing live.
import { createBaseMap, livePoints, COLOURS } from "wangge/basemap.js";
import { _, word } from "wangge/console.js";

const element = document.getElementById("wg-map");
const feed = document.getElementById("wg-feed");

function note(text) {
  const item = document.createElement("li");
  item.textContent = `${new Date().toLocaleTimeString()} ${text}`;
  feed.prepend(item);
  while (feed.children.length > 50) feed.lastChild.remove();
}

createBaseMap(element).then((map) => {
  const people = livePoints(map, "live-people", COLOURS.person);
  const cases = livePoints(map, "live-incidents", COLOURS.open);
  document.body.addEventListener("wg:person", (e) => people.upsert(e.detail.rows));
  document.body.addEventListener("wg:incident", (e) => {
    cases.upsert(e.detail.rows);
    for (const row of e.detail.rows) {
      const what = e.detail.op === "INSERT" ? _("New case") : _("Case updated");
      item(row, what);
    }
  });
  function item(row, what) {
    const li = document.createElement("li");
    li.dataset.incidentId = row.id;
    li.textContent = `${new Date().toLocaleTimeString()} ${what} #${row.id} · ${word("status", row.status)}`;
    feed.prepend(li);
    while (feed.children.length > 50) feed.lastChild.remove();
  }
  document.body.addEventListener("wg:bulk", () => note(_("Many changes: refreshing the map")));
  document.body.addEventListener("wg:reset", () => map.getSource("incidents")?.reload?.());
  element.dataset.ready = "true";
  window.wanggeMap = map;
}).catch((error) => {
  element.dataset.ready = "error";
  console.error(error);
});
