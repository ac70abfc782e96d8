// Ideas (issue 13): vote without leaving the page, similar ideas while typing a title, live tallies,
// and the print button of "You said, we did". Every page works without it (the forms post).
import { csrfToken } from "./csrf.js";
import { el } from "./dom.js";
import { announce } from "./live_regions.js";
import { socket } from "./socket.js";

function showCount(box, votes) {
  box.querySelector("[data-idea-votes]").textContent = String(votes);
  box.querySelector("[data-idea-votes-word]").textContent = votes === 1 ? "vote" : "votes";
}

function showBudget(budget) {
  const left = document.querySelector("[data-idea-budget-left]");
  if (left && budget) left.textContent = String(budget.left);
}

function initVoting() {
  document.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form[data-idea-vote-form]");
    if (!form) return;
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const resp = await fetch(form.action, {
        method: "POST", body: new FormData(form),
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        announce(data.error?.message || "Your vote could not be saved.");
        return;
      }
      const box = form.closest("[data-idea-vote]");
      showCount(box, data.votes);
      showBudget(data.budget);
      form.querySelector('input[name="on"]').value = data.my_vote ? "0" : "1";
      button.textContent = data.my_vote ? "Withdraw my vote" : "Vote for this idea";
      button.setAttribute("aria-pressed", data.my_vote ? "true" : "false");
      button.classList.toggle("primary", !data.my_vote);
      const left = data.budget ? ` ${data.budget.left} of ${data.budget.total} votes left.` : "";
      announce((data.my_vote ? "Your vote is counted." : "Your vote is withdrawn.") + left);
    } finally {
      button.disabled = false;
      button.focus();
    }
  });
}

function initLive() {
  socket.on("idea.voted", (data) => {
    const box = document.querySelector(`[data-idea-vote="${data.idea_id}"]`);
    if (box) showCount(box, data.votes);
  });
  socket.on("idea.status", (data) => {
    for (const node of document.querySelectorAll(`[data-idea-id="${data.idea.id}"] [data-idea-status]`)) {
      node.textContent = data.idea.status_label;
    }
  });
}

function initSimilar() {
  const form = document.querySelector("form[data-idea-form]");
  if (!form) return;
  const input = form.querySelector("#title");
  const list = form.querySelector("[data-idea-similar-list]");
  const status = form.querySelector("[data-idea-similar-status]");
  let timer = 0;
  let asked = "";
  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const q = input.value.trim();
      if (q === asked) return;
      asked = q;
      if (q.length < 3) { list.replaceChildren(); return; }
      const resp = await fetch(`${form.dataset.similarUrl}?q=${encodeURIComponent(q)}`,
        { headers: { Accept: "application/json" } });
      if (!resp.ok || q !== asked) return;
      const { ideas } = await resp.json();
      list.replaceChildren(...ideas.map((i) => el("li", {},
        el("a", { href: i.url }, i.title), ` — ${i.status_label}, ${i.votes} vote${i.votes === 1 ? "" : "s"}`)));
      status.textContent = ideas.length
        ? `${ideas.length} similar idea${ideas.length === 1 ? " is" : "s are"} already posted: vote for one instead?`
        : "No similar ideas found.";
    }, 350);
  });
}

function initPrint() {
  for (const button of document.querySelectorAll("[data-print]")) {
    button.hidden = false;
    button.addEventListener("click", () => window.print());
  }
}

initVoting();
initLive();
initSimilar();
initPrint();
