// The meeting page as an application (issue 12): the side panel's tabs (WAI-ARIA tabs: arrow keys,
// Home and End move between tabs and show their panel), the counts on the tabs, "See everyone"
// (every tile in a grid instead of the stage), the toolbar's "More" and "Chair" buttons, and what a
// touch screen should not be offered (screen sharing, keyboard shortcuts).
import { byId as $, el } from "./dom.js";

const meeting = $("meeting");
const tabs = () => [...document.querySelectorAll('#side [role="tab"]')];

/** Shows the panel of `name` ("people", "hands", "votes", "chat", "agenda", "chair"). */
export function selectTab(name, { focus = false } = {}) {
  const tab = $(`tab-${name}`);
  if (!tab) return;
  for (const t of tabs()) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  if (focus) tab.focus();
  document.dispatchEvent(new CustomEvent("meeting:tab", { detail: name }));
}

export function selectedTab() {
  return tabs().find((t) => t.getAttribute("aria-selected") === "true")?.id.slice(4) || null;
}

/** The number after a tab's label ("Hands 2", read as "Hands 2 raised"); nothing for 0. */
export function setCount(name, n, label = "") {
  const c = $(`count-${name}`);
  if (!c || c.dataset.n === String(n)) return;
  c.dataset.n = String(n);
  c.replaceChildren(...(n ? [String(n), el("span", { class: "visually-hidden", text: label ? ` ${label}` : "" })] : []));
}

function onTabKey(e) {
  const list = tabs();
  const i = list.indexOf(e.target);
  if (i < 0) return;
  let next = null;
  if (e.key === "ArrowRight" || e.key === "ArrowDown") next = list[(i + 1) % list.length];
  else if (e.key === "ArrowLeft" || e.key === "ArrowUp") next = list[(i - 1 + list.length) % list.length];
  else if (e.key === "Home") next = list[0];
  else if (e.key === "End") next = list[list.length - 1];
  if (!next) return;
  e.preventDefault();
  selectTab(next.id.slice(4), { focus: true });
}

// -- the toolbar ---------------------------------------------------------------------------

function setView(everyone) {
  meeting.classList.toggle("see-everyone", everyone);
  const b = $("view-toggle");
  b.setAttribute("aria-pressed", String(everyone));
  b.firstChild.textContent = everyone ? "Show the stage" : "See everyone";
  if (everyone && $("stage")?.contains(document.activeElement)) b.focus(); // never leave focus on a hidden stage
}

function toggleMore(open) {
  const b = $("more-button");
  const panel = $("more-panel");
  if (!b) return;
  const show = open ?? panel.hidden;
  panel.hidden = !show;
  b.setAttribute("aria-expanded", String(show));
  if (show) {
    // On a narrow screen the menu offers the toolbar's hidden buttons: it shows their state and presses them.
    for (const proxy of panel.querySelectorAll("[data-proxy]")) {
      const real = $(proxy.dataset.proxy);
      proxy.hidden = !real || real.hidden;
      if (!real) continue;
      proxy.textContent = real.firstChild.textContent.trim();
      proxy.setAttribute("aria-pressed", real.getAttribute("aria-pressed") || "false");
    }
    $("more-quality").textContent = $("quality")?.textContent || "";
  }
}

const touch = window.matchMedia?.("(hover: none) and (pointer: coarse)").matches;

/** The call view takes the whole window while #call is shown (meeting.js shows it on joining). */
function followCall() {
  const call = $("call");
  const on = !!call && !call.hidden;
  meeting.classList.toggle("in-call", on);
  document.body.classList.toggle("in-call", on);
  if (!on) toggleMore(false);
}

function init() {
  if (!$("side")) return;
  if ($("call")) {
    new MutationObserver(followCall).observe($("call"), { attributes: true, attributeFilter: ["hidden"] });
    followCall();
  }
  for (const t of tabs()) {
    t.addEventListener("click", () => selectTab(t.id.slice(4)));
    t.addEventListener("keydown", onTabKey);
  }
  // A link to something inside a panel (#decks after attaching a paper) opens that panel.
  const target = location.hash && document.getElementById(decodeURIComponent(location.hash.slice(1)));
  const panel = target?.closest?.('[role="tabpanel"]');
  if (panel) selectTab(panel.id.slice(6));
  if (touch || !navigator.mediaDevices?.getDisplayMedia) {
    meeting.classList.add("touch");
    if ($("screen-button")) $("screen-button").hidden = true;
  }
  $("view-toggle")?.addEventListener("click", () => setView(!meeting.classList.contains("see-everyone")));
  $("more-button")?.addEventListener("click", () => toggleMore());
  $("more-panel")?.addEventListener("click", (e) => {
    const proxy = e.target.closest("[data-proxy]");
    if (!proxy) return;
    $(proxy.dataset.proxy)?.click();
    toggleMore(false);
    $("more-button").focus();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && $("more-panel") && !$("more-panel").hidden) {
      toggleMore(false);
      $("more-button").focus();
    }
  });
  document.addEventListener("click", (e) => {
    if ($("more-panel") && !$("more-panel").hidden && !e.target.closest(".more")) toggleMore(false);
  });
  const chair = $("chair-button");
  if (chair && $("tab-chair")) {
    chair.hidden = false;
    chair.addEventListener("click", () => selectTab("chair", { focus: true }));
  }
}

init();
