// /console/plans: the redraw form (communities or a street office) and the plan list (compare two).
import { _ } from "wangge/console.js";

const form = document.getElementById("pl-redraw-form");
if (form) {
  // a street office and single communities exclude each other
  form.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches("[data-street-choice]") && target.checked) {
      for (const box of form.querySelectorAll("input[name=communities]")) box.checked = false;
    } else if (target.matches("input[name=communities]") && target.checked) {
      for (const radio of form.querySelectorAll("[data-street-choice]")) radio.checked = false;
    }
  });
  // a new idempotency key once a run was accepted: the next submit is a new redraw
  document.body.addEventListener("htmx:afterRequest", (event) => {
    if (event.detail.elt === form && event.detail.successful) {
      const key = form.querySelector("input[name=key]");
      key.value = [...crypto.getRandomValues(new Uint8Array(16))].map((b) => b.toString(16).padStart(2, "0")).join("");
    }
  });
}

const compare = document.getElementById("pl-compare-form");
if (compare) {
  const go = document.getElementById("pl-compare-go");
  const update = () => {
    const picked = [...compare.querySelectorAll("input[name=pick]:checked")].map((b) => b.value);
    go.disabled = picked.length !== 2;
    go.title = picked.length === 2 ? "" : _("Tick exactly two plans of one community");
    document.getElementById("pl-compare-a").value = picked[0] || "";
    document.getElementById("pl-compare-b").value = picked[1] || "";
  };
  compare.addEventListener("change", update);
  compare.addEventListener("submit", () => {
    for (const box of compare.querySelectorAll("input[name=pick]")) box.disabled = true;  // only a and b in the URL
  });
  update();
}
