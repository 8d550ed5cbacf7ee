// The resident's ticket (/report/t/<secret>) follows its case by itself: every POLL_MS the page
// reads its own address again (no new URL, nothing added to it: the address is the ticket) and,
// when the status or the steps changed, shows the new ticket in place. A rating being written is
// never replaced; a hidden tab does not poll.
const POLL_MS = 10000;

function signature(root) {
  const ticket = root.querySelector(".rp-ticket");
  if (!ticket) return null;
  return `${ticket.dataset.status}|${ticket.querySelectorAll(".rp-steps li").length}|${!!ticket.querySelector("[data-field='rating']")}`;
}

async function poll() {
  if (document.hidden) return;
  const form = document.getElementById("rp-rate");
  if (form && form.contains(document.activeElement)) return;  // the resident is rating: leave it
  let response;
  try {
    response = await fetch(location.pathname, { cache: "no-store", credentials: "same-origin" });
  } catch (e) {
    return;  // offline for a moment: try again later
  }
  if (!response.ok) return;
  const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
  const now = document.querySelector(".rp-ticket");
  const next = fresh.querySelector(".rp-ticket");
  if (!now || !next || signature(fresh) === signature(document)) return;
  now.replaceWith(document.adoptNode(next));
  document.body.dispatchEvent(new CustomEvent("wg:ticket-changed", { detail: { status: next.dataset.status } }));
}

setInterval(poll, POLL_MS);
document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
