// The field worker's page: actions go through the phone's outbox (field-queue.js), so the page
// keeps working without a network; positions come from the browser's geolocation (WGS84).
import { _, toast } from "wangge/console.js";
import { startClocks } from "wangge/department-clock.js";
import { Outbox } from "wangge/field-queue.js";

const root = document.querySelector(".field");
const personId = root?.dataset.personId;
const bar = document.getElementById("field-sync");
const failedList = document.getElementById("field-failed");

startClocks();

// the target of an action: the card it belongs to (data-task-id / data-incident-id / data-resident-id)
function cardOf(action) {
  const b = action.body;
  if (b.task_id) return document.querySelector(`.field-card[data-task-id="${b.task_id}"]`);
  if (b.incident_id) return document.querySelector(`.field-card[data-incident-id="${b.incident_id}"]`);
  if (b.resident_id) return document.querySelector(`.field-card[data-resident-id="${b.resident_id}"]`);
  return null;
}

function showPending(items) {
  const n = items.length;
  bar.dataset.pending = String(n);
  const label = bar.querySelector(".field-pending");
  label.hidden = n === 0;
  label.textContent = _("{n} actions waiting to sync").replace("{n}", n);
  document.getElementById("field-sync-now").hidden = n === 0 || !navigator.onLine;
  for (const card of document.querySelectorAll(".field-card[data-queued]")) {
    delete card.dataset.queued;
    card.querySelector(".field-queued").hidden = true;
  }
  for (const action of items) {
    const card = cardOf(action);
    if (!card) continue;
    card.dataset.queued = action.kind;
    card.querySelector(".field-queued").hidden = false;
  }
}

function showNetwork() {
  const online = navigator.onLine;
  bar.dataset.online = String(online);
  const net = bar.querySelector(".field-net");
  net.textContent = online ? net.dataset.onlineText : net.dataset.offlineText;
  showPending(outbox.pending());
}

function reportFailure(action, status, message) {
  const li = document.createElement("li");
  li.dataset.kind = action.kind;
  li.dataset.status = String(status);
  li.textContent = _("Not done") + ": " + message;
  failedList.append(li);
  failedList.hidden = false;
  toast(message);
}

const outbox = new Outbox(personId, {
  onChange: showPending,
  onFailed: reportFailure,
  onSynced: (n) => {
    toast(_("{n} actions synced").replace("{n}", n));
    document.body.dispatchEvent(new CustomEvent("wg:field-synced"));
  },
  onStalled: (action, status) => {
    if (status === 401) toast(_("Sign in again to sync the actions kept on this phone"));
  },
});

function position() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error(_("This phone gives no position")));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lon: p.coords.longitude, lat: p.coords.latitude, crs: "wgs84",
                       accuracy_m: Math.round(p.coords.accuracy * 10) / 10 }),
      (e) => reject(new Error(_("No position from this phone") + (e.message ? ` (${e.message})` : ""))),
      { enableHighAccuracy: true, timeout: 20000, maximumAge: 30000 },
    );
  });
}

// ---- the visit dialog
const dialog = document.getElementById("field-visit");
const visitForm = document.getElementById("field-visit-form");

function countTicks() {
  const n = visitForm.querySelectorAll('input[name="checklist"]:checked').length;
  document.getElementById("field-visit-count").textContent = String(n);
}

function openVisit(button) {
  visitForm.reset();
  visitForm.elements.building_id.value = button.dataset.buildingId;
  visitForm.elements.resident_id.value = button.dataset.residentId || "";
  document.getElementById("field-visit-who").textContent = button.dataset.who || "";
  countTicks();
  dialog.showModal();
}

async function saveVisit() {
  const checklist = Array.from(visitForm.querySelectorAll('input[name="checklist"]:checked'), (i) => i.value);
  if (!checklist.length) {
    toast(_("Tick at least one checklist item"));
    return;
  }
  let where;
  try {
    where = await position();
  } catch (e) {
    toast(e.message);
    return;
  }
  const resident = visitForm.elements.resident_id.value;
  const body = {
    building_id: Number(visitForm.elements.building_id.value),
    resident_id: resident ? Number(resident) : null,
    checklist,
    notes: visitForm.elements.notes.value.trim() || null,
    position: where,
  };
  outbox.add("visit", body, `visit:${body.building_id}:${resident}`);
  dialog.close();
}

if (dialog) {
  document.getElementById("field-visit-save").addEventListener("click", saveVisit);
  document.getElementById("field-visit-cancel").addEventListener("click", () => dialog.close());
  document.getElementById("field-visit-all").addEventListener("click", () => {
    for (const box of visitForm.querySelectorAll('input[name="checklist"]')) box.checked = true;
    countTicks();
  });
  visitForm.addEventListener("change", countTicks);
}

// ---- buttons of the cards (delegated: the lists are swapped by htmx)
async function act(button) {
  const kind = button.dataset.act;
  if (kind === "visit_open") {
    openVisit(button);
    return;
  }
  if (kind === "task_accept" || kind === "task_decline") {
    const id = Number(button.dataset.taskId);
    outbox.add(kind, { task_id: id }, `task:${id}`);
  } else if (kind === "task_complete") {
    const id = Number(button.dataset.taskId);
    let where;
    try {
      where = await position();
    } catch (e) {
      toast(e.message);
      return;
    }
    outbox.add(kind, { task_id: id, position: where }, `task-complete:${id}`);
  } else if (kind === "case_move") {
    const id = Number(button.dataset.incidentId);
    let where = null;
    try { where = await position(); } catch (e) { where = null; }  // optional for a case move
    outbox.add(kind, { incident_id: id, action: button.dataset.action, position: where }, `case:${id}:${button.dataset.action}`);
  }
}

document.addEventListener("click", (event) => {
  const button = event.target.closest("button[data-act]");
  if (button) act(button);
});
document.getElementById("field-sync-now")?.addEventListener("click", () => outbox.flush());
document.addEventListener("wg:sync-now", () => outbox.flush());  // Sign out found actions waiting
window.addEventListener("online", showNetwork);
window.addEventListener("offline", showNetwork);
document.body.addEventListener("htmx:afterSwap", () => showPending(outbox.pending()));
showNetwork();
outbox.flush();

// keep the page and its scripts on the phone so that it also reloads without a network
if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("/console/field/sw.js", { scope: "/console/field" })
    .then(() => navigator.serviceWorker.ready)
    .then((registration) => {
      const loaded = performance.getEntriesByType("resource").map((e) => e.name)
        .filter((u) => u.startsWith(location.origin + "/console/static/"));
      registration.active?.postMessage({ keep: loaded });
    })
    .catch(() => { /* no offline reload on this browser: the outbox still keeps every action */ });
}
