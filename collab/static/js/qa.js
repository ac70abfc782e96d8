// A Q&A session page (templates/qa/session.html). The page works without this script (every form
// posts). This adds: upvoting without leaving the page, and live updates: `qa.voted` changes a
// count in place; `qa.question`, `qa.answering`, `qa.answered`, `qa.ended`, `qa.updated` and (to
// moderators only) `qa.pending` fetch the live part of the page again (?fragment=1: the server
// decides what this reader may see; the fragment is parsed as inert HTML, scripts never run) and
// put it in place, keeping focus where it was and announcing what changed.
import { csrfToken } from "./csrf.js";
import { announce } from "./live_regions.js";
import { socket } from "./socket.js";

const page = document.querySelector("[data-qa-session]");

function showVote(form, data) {
  const button = form.querySelector("button");
  form.querySelector('input[name="on"]').value = data.my_vote ? "0" : "1";
  button.setAttribute("aria-pressed", data.my_vote ? "true" : "false");
  button.querySelector("[data-qa-votes]").textContent = String(data.votes);
  const word = button.querySelector(".visually-hidden");
  if (word) word.textContent = ` ${data.votes === 1 ? "vote" : "votes"}: ${data.my_vote ? "withdraw my upvote" : "upvote"}`;
}

function initVoting() {
  document.addEventListener("submit", async (ev) => {
    const form = ev.target.closest("form[data-qa-vote-form]");
    if (!form) return;
    ev.preventDefault();
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const resp = await fetch(form.action, {
        method: "POST", body: new FormData(form), credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      });
      const data = await resp.json().catch(() => ({}));
      if (!resp.ok) {
        announce(data.error?.message || "Your vote could not be saved.");
        return;
      }
      showVote(form, data);
      announce(data.my_vote ? "Your upvote is counted." : "Your upvote is withdrawn.");
    } finally {
      button.disabled = false;
      button.focus();
    }
  });
}

let timer = null;

async function refresh(said) {
  const live = document.getElementById("qa-live");
  const resp = await fetch(page.dataset.qaFragment, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!resp.ok) return;
  const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
  const focused = document.activeElement && live.contains(document.activeElement) ? document.activeElement : null;
  const card = focused?.closest("[data-question-id]")?.dataset.questionId;
  const open = [...live.querySelectorAll("details[open]")].map((d) => d.closest("[data-question-id]")?.dataset.questionId + ":" + d.querySelector("summary").textContent);
  live.replaceChildren(...[...doc.body.childNodes].map((n) => document.importNode(n, true)));
  for (const d of live.querySelectorAll("details")) {
    if (open.includes(d.closest("[data-question-id]")?.dataset.questionId + ":" + d.querySelector("summary").textContent)) d.open = true;
  }
  if (card) (live.querySelector(`#q-${card} button, #q-${card} summary`) || live).focus?.();
  if (said) announce(said);
}

function later(said) {
  clearTimeout(timer);
  timer = setTimeout(() => refresh(said), 250);
}

function mine(data) {
  const id = Number(page.dataset.qaSession);
  return data.session_id === id || data.question?.session_id === id || data.session?.id === id;
}

function initLive() {
  socket.on("qa.voted", (data) => {
    if (!mine(data)) return;
    for (const n of document.querySelectorAll(`#q-${data.question_id} [data-qa-votes]`)) n.textContent = String(data.votes);
  });
  const said = {
    "qa.question": "The questions have changed.", "qa.answering": "A question is being answered now.",
    "qa.answered": "A question has been answered.", "qa.ended": "The session has ended.",
    "qa.pending": "A question is waiting for approval.", "qa.updated": null,
  };
  for (const [name, text] of Object.entries(said)) socket.on(name, (data) => { if (mine(data)) later(text); });
}

if (page) {
  initVoting();
  initLive();
}
