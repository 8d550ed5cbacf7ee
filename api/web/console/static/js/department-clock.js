// Time limits counting down: every <time data-due="ISO"> on the page shows what is left
// ("剩余 3 小时 12 分") or how long it is overdue ("超时 2 小时 5 分"), refreshed every second,
// also in parts htmx swaps in later. Overdue ones get the class "is-overdue"; due within an
// hour "is-soon". Used by the department queue and the field worker's page.
import { _ } from "wangge/console.js";

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export function spell(ms) {
  const abs = Math.abs(ms);
  const d = Math.floor(abs / DAY);
  const h = Math.floor((abs % DAY) / HOUR);
  const m = Math.floor((abs % HOUR) / MINUTE);
  if (d > 0) return _("{d} d {h} h").replace("{d}", d).replace("{h}", h);
  if (h > 0) return _("{h} h {m} min").replace("{h}", h).replace("{m}", m);
  const s = Math.floor((abs % MINUTE) / 1000);
  return _("{m} min {s} s").replace("{m}", m).replace("{s}", s);
}

export function tick(root = document) {
  const now = Date.now();
  for (const el of root.querySelectorAll("[data-due]")) {
    const due = Date.parse(el.dataset.due);
    if (Number.isNaN(due)) continue;
    const left = due - now;
    const text = left >= 0 ? _("{t} left").replace("{t}", spell(left)) : _("overdue {t}").replace("{t}", spell(left));
    if (el.textContent !== text) el.textContent = text;
    el.classList.toggle("is-overdue", left < 0);
    el.classList.toggle("is-soon", left >= 0 && left < HOUR);
    if (!el.title) el.title = new Date(due).toLocaleString();
  }
}

let timer = null;
export function startClocks() {
  tick();
  if (timer === null) timer = setInterval(() => tick(), 1000);
  document.body.addEventListener("htmx:afterSwap", () => tick());
}
