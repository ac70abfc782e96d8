// A poll in its thread (templates/polls/_poll.html). The page works without this script: ranks,
// scores and dots are plain selects and number fields. This adds, for ranked choice, "Move up" and
// "Move down" buttons on each option (WCAG 2.5.7: no dragging), keeping the ranks a permutation
// and announcing each move; for dot votes, a live count of the dots left; and live results: on a
// `poll.tally` (sent only to those who may see the results), `poll.voted` or `poll.closed` event
// the server-rendered results region is fetched again and put in place (the server decides what
// this reader may see; the fragment is parsed as inert HTML, scripts never run).
import { el } from "./dom.js";
import { announce } from "./live_regions.js";
import { socket } from "./socket.js";

function rankItems(list) {
  return [...list.querySelectorAll(".poll-rank-item")];
}

function optionName(item) {
  return item.querySelector(".poll-option-text").textContent;
}

// Put the items in rank order and make each select say its position.
function renumber(list) {
  rankItems(list).forEach((item, i) => {
    item.querySelector("select").value = String(i + 1);
    item.querySelector(".poll-up").disabled = i === 0;
    item.querySelector(".poll-down").disabled = i === rankItems(list).length - 1;
  });
}

function sortByRank(list) {
  const items = rankItems(list).sort((a, b) => Number(a.querySelector("select").value) - Number(b.querySelector("select").value));
  items.forEach((item) => list.append(item));
}

function move(list, item, step, button) {
  const items = rankItems(list);
  const at = items.indexOf(item);
  const to = at + step;
  if (to < 0 || to >= items.length) return;
  if (step < 0) items[to].before(item); else items[to].after(item);
  renumber(list);
  const again = item.querySelector(button.classList.contains("poll-up") ? ".poll-up" : ".poll-down");
  (again.disabled ? item.querySelector("select") : again).focus();
  announce(`${optionName(item)} moved to rank ${to + 1} of ${items.length}.`);
}

function enhanceRanking(form) {
  const list = form.querySelector(".poll-rank-list");
  if (!list) return;
  sortByRank(list);
  for (const item of rankItems(list)) {
    const name = optionName(item);
    // The visible words begin the accessible name ("Move up Nights"): WCAG 2.5.3, label in name.
    const hidden = () => el("span", { class: "visually-hidden" }, ` ${name}`);
    const up = el("button", { type: "button", class: "poll-up" }, "Move up", hidden());
    const down = el("button", { type: "button", class: "poll-down" }, "Move down", hidden());
    up.addEventListener("click", () => move(list, item, -1, up));
    down.addEventListener("click", () => move(list, item, 1, down));
    item.append(el("span", { class: "poll-move" }, up, " ", down));
    const select = item.querySelector("select");
    select.addEventListener("change", () => {
      // The option takes the chosen rank; the one that had it moves into the gap.
      const wanted = Number(select.value) - 1;
      const items = rankItems(list).filter((x) => x !== item);
      items.splice(wanted, 0, item);
      items.forEach((x) => list.append(x));
      renumber(list);
      select.focus();
      announce(`${name} is now rank ${wanted + 1}.`);
    });
  }
  renumber(list);
}

function enhanceDots(section, form) {
  const budget = Number(section.dataset.dots || 0);
  const note = form.querySelector(".poll-dots-left");
  if (!budget || !note) return;
  const inputs = [...form.querySelectorAll(".poll-dot-input")];
  const update = () => {
    const used = inputs.reduce((sum, i) => sum + (Number(i.value) || 0), 0);
    note.hidden = false;
    note.textContent = used > budget ? `${used - budget} dots too many: you have ${budget}.`
      : `${budget - used} of ${budget} dots left.`;
  };
  inputs.forEach((i) => i.addEventListener("input", update));
  update();
}

const pending = new Map();

async function refreshResults(pollId, said) {
  const region = document.getElementById(`poll-${pollId}-results`);
  if (!region) return;
  const r = await fetch(region.dataset.resultsUrl, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!r.ok) return;
  const doc = new DOMParser().parseFromString(await r.text(), "text/html");
  const fresh = doc.getElementById(region.id);
  if (!fresh) return;
  region.replaceWith(document.importNode(fresh, true));
  if (said) announce(said);
}

function later(pollId, said) {
  clearTimeout(pending.get(pollId));
  pending.set(pollId, setTimeout(() => refreshResults(pollId, said), 300));
}

for (const section of document.querySelectorAll(".poll[data-poll-id]")) {
  const form = section.querySelector("form.poll-vote");
  if (form && section.dataset.pollKind === "ranked") enhanceRanking(form);
  if (form && section.dataset.pollKind === "dot") enhanceDots(section, form);
  const pollId = Number(section.dataset.pollId);
  socket.on("poll.tally", (d) => { if (d.poll_id === pollId) later(pollId, "Poll results updated."); });
  socket.on("poll.voted", (d) => { if (d.poll_id === pollId) later(pollId, null); });
  socket.on("poll.closed", (d) => { if (d.poll && d.poll.id === pollId) later(pollId, "The poll has closed."); });
}
