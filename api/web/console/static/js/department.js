// Department queue: time limits count down; the selected case stays marked in the list.
import { startClocks } from "wangge/department-clock.js";

startClocks();

function mark(id) {
  for (const row of document.querySelectorAll(".dept-row")) {
    row.classList.toggle("is-selected", row.dataset.incidentId === id);
  }
}

document.body.addEventListener("htmx:afterSwap", () => {
  const card = document.querySelector("#dept-case [data-incident-id]");
  mark(card ? card.dataset.incidentId : null);
});
