// Live regions the live scripts speak through: one polite announcer for screen readers, and
// lines under the page heading for the connection, room activity, presence and a banner
// (assertive) when access ends. Created on first use; pages work without them.
import { el } from "./dom.js";

export function region(id, className, live) {
  let node = document.getElementById(id);
  if (!node) {
    node = el("p", { id, class: className, role: live ? "status" : null, "aria-live": live || null });
    const main = document.getElementById("main");
    const anchor = main.querySelector(".page-head") || main.querySelector("h1");
    (anchor || main.firstElementChild)?.after(node);
  }
  return node;
}

export function announce(text) {
  const node = document.getElementById("live-announcer") ||
    document.getElementById("main").appendChild(el("div", { id: "live-announcer", class: "visually-hidden", role: "status", "aria-live": "polite" }));
  node.textContent = "";
  setTimeout(() => { node.textContent = text; }, 50);
}

export function banner(text) {
  const node = region("live-banner", "banner live-banner", "assertive");
  node.textContent = text;
}

export function activity(text) {
  region("live-activity", "hint live-activity", "polite").textContent = text;
}

export function connectionNote(text) {
  const node = region("live-connection", "hint live-connection", "polite");
  node.textContent = text;
  node.hidden = !text;
}
