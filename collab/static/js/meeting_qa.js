// The meeting page's Q&A tab (templates/qa/_meeting_panel.html): the meeting's Q&A session, live. Nothing
// here leaves the call: asking and upvoting go by fetch, and the list is the session page's compact
// fragment (the server decides what this reader sees; parsed as inert HTML), fetched again when a
// `qa.*` event of this session arrives (room events: this script subscribes to the meeting's room).
import { csrfToken } from "./csrf.js";
import { announce } from "./live_regions.js";
import { socket } from "./socket.js";

let timer = null;

async function refresh(panel, said) {
  const list = panel.querySelector("[data-qa-list]");
  const resp = await fetch(panel.dataset.qaFragment, { credentials: "same-origin", headers: { Accept: "text/html" } });
  if (!resp.ok) return;
  const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
  const focused = list.contains(document.activeElement) ? document.activeElement.closest("[data-question-id]")?.dataset.questionId : null;
  list.replaceChildren(...[...doc.body.childNodes].map((n) => document.importNode(n, true)));
  if (focused) list.querySelector(`#mq-${focused} button`)?.focus();
  const count = document.getElementById("count-qa");
  if (count) count.textContent = String(list.querySelectorAll(".qa-questions > li").length || "");
  if (said) announce(said);
}

async function post(form, json) {
  const resp = await fetch(form.action, {
    method: "POST", body: new FormData(form), credentials: "same-origin",
    headers: { Accept: json ? "application/json" : "text/html", "X-CSRFToken": csrfToken() },
  });
  return resp;
}

export function initQa() {
  const panel = document.getElementById("panel-qa");
  if (!panel) return;
  const id = Number(panel.dataset.qaSession);
  const roomId = Number(panel.dataset.qaRoom);
  const note = panel.querySelector("[data-qa-note]");
  const later = (said) => { clearTimeout(timer); timer = setTimeout(() => refresh(panel, said), 250); };
  panel.addEventListener("submit", async (ev) => {
    const form = ev.target;
    if (!form.matches("[data-qa-vote-form], [data-qa-ask]")) return;
    ev.preventDefault();
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      const resp = await post(form, form.matches("[data-qa-vote-form]"));
      if (!resp.ok) {
        note.textContent = "That did not work. Try again, or use the Q&A page.";
        return;
      }
      if (form.matches("[data-qa-ask]")) {
        form.reset();
        note.textContent = "Your question is sent.";
      }
      await refresh(panel, null);
    } finally {
      button.disabled = false;
    }
  });
  const subscribe = () => socket.emit("subscribe", { room_id: roomId });
  socket.on("connect", subscribe);
  if (socket.connected) subscribe();
  const mine = (d) => d.session_id === id || d.question?.session_id === id || d.session?.id === id;
  socket.on("qa.voted", (d) => {
    if (!mine(d)) return;
    for (const n of panel.querySelectorAll(`#mq-${d.question_id} [data-qa-votes]`)) n.textContent = String(d.votes);
  });
  for (const [name, said] of [["qa.question", null], ["qa.answering", "Q&A: a question is being answered now."],
                              ["qa.answered", "Q&A: a question has been answered."], ["qa.ended", "The Q&A session has ended."]]) {
    socket.on(name, (d) => { if (mine(d)) later(said); });
  }
  refresh(panel, null);
}
