// The web broadcast on the meeting page (issue 16): the Chair tab starts and stops it and works the
// viewers' queue (questions and requests to speak: "Bring in" lets a viewer join with audio and video);
// everyone in the meeting sees "Broadcasting" and how many watch (the media worker counts the viewers
// and tells the participants, meeting.js passes it on as a `collab:viewers` event).
import { byId as $, el } from "./dom.js";
import { ctx, postJson, setText } from "./meeting_hybrid.js";
import { socket } from "./socket.js";

const box = document.querySelector(".broadcast-box");
let viewers = 0;

const post = postJson;

function onAir() {
  const live = !!ctx.snap?.broadcast?.live;
  const badge = $("on-air");
  if (badge) {
    badge.hidden = !live;
    setText(badge, live ? `Live · ${viewers} watching` : "");
    badge.title = live ? "This meeting is being broadcast to people who may read the room." : "";
  }
  return live;
}

export function renderBroadcast() {
  const live = onAir();
  if (!box) return;
  const toggle = $("broadcast-toggle");
  toggle.setAttribute("aria-pressed", String(live));
  setText(toggle, live ? "Stop broadcast" : "Start broadcast");
  $("broadcast-link").hidden = !live;
  setText($("broadcast-status"), live ? `Broadcasting: ${viewers} ${viewers === 1 ? "person is" : "people are"} watching.`
    : "Not broadcasting.");
}

async function loadQueue() {
  if (!box) return;
  let data;
  try {
    const res = await fetch(box.dataset.queueUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!res.ok) return;
    data = await res.json();
  } catch {
    return;
  }
  const list = $("viewer-queue");
  list.replaceChildren(...data.requests.map((r) => {
    const who = r.from?.name || "A viewer";
    const what = r.kind === "speak" ? `${who} asks to speak` : `${who} asks: `;
    const actions = el("span", { class: "queue-actions" },
      r.kind === "speak" ? el("button", { type: "button", class: "small primary", text: "Bring in",
        "aria-label": `Bring in ${who}`, onclick: () => act(r.id, "bring-in") }) : null,
      el("button", { type: "button", class: "small", text: r.kind === "speak" ? "Decline" : "Done",
        "aria-label": `${r.kind === "speak" ? "Decline" : "Done with"} ${who}'s ${r.kind === "speak" ? "request" : "question"}`,
        onclick: () => act(r.id, "dismiss") }));
    return el("li", { class: "viewer-request" },
      el("span", {}, el("strong", { text: what }), r.body ? el("span", { class: "viewer-question", text: r.body }) : null),
      actions);
  }));
  $("viewer-queue-empty").hidden = data.requests.length > 0;
}

async function act(id, what) {
  const base = box.dataset.queueUrl.replace(/\/queue$/, "");
  if (await post(`${base}/requests/${id}/${what}`)) loadQueue();
}

export function initBroadcast() {
  document.addEventListener("collab:viewers", (e) => { viewers = e.detail.count; renderBroadcast(); });
  if (!box) return;
  $("broadcast-toggle").addEventListener("click", async () => {
    const live = !!ctx.snap?.broadcast?.live;
    const data = await post(live ? box.dataset.stopUrl : box.dataset.startUrl);
    if (data && !live) setText($("broadcast-status"), "Broadcasting: nobody is watching yet.");
  });
  socket.on("meeting.viewer_queue", (m) => { if (m.meeting_id === ctx.meetingId) loadQueue(); });
  loadQueue();
}
