// The broadcast's viewer page (issue 16): one big Play button, volume, captions, text size, a question
// box and "Ask to speak", for people who are not confident with technology. Play asks the web app for a
// viewer token and receives the stage from the media worker (receive-only: the worker's offer carries
// no publishing transceivers for a viewer, so the answer sends nothing); the presented slide comes from
// the meeting's live state over the page's Socket.IO connection (meeting_join follows a meeting, it is
// not attending it). Losing access, the broadcast stopping or the meeting ending stop it and say why.
import { csrfToken } from "./csrf.js";
import { byId as $, el } from "./dom.js";
import { socket } from "./socket.js";

const root = $("watch");
const meetingId = Number(root?.dataset.meetingId);
const roomId = Number(root?.dataset.roomId);
const SIZES = [1, 1.15, 1.3, 1.5, 1.75, 2];
const CAPTION_HOLD = 6000;

const state = {
  ws: null, pc: null, slots: {}, people: new Map(), playing: false, live: !!root?.dataset.live,
  captions: localStorage.getItem("collab.watch.captions") === "on",
  size: Number(localStorage.getItem("collab.watch.size")) || 0,
  snap: null, over: false,
};

function status(text) {
  const p = $("watch-status");
  if (p.textContent !== text) p.textContent = text;
}

async function post(url, body) {
  const res = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json", "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(data.error?.message || "That did not work. Please try again.");
  return data;
}

// -- playing ---------------------------------------------------------------------------------------

async function play() {
  const button = $("watch-play");
  button.disabled = true;
  $("watch-play-label").textContent = "Connecting…";
  status("Connecting to the broadcast…");
  let join;
  try {
    join = await post(root.dataset.tokenUrl);
  } catch (err) {
    stopped(err.message, !state.over);
    return;
  }
  const ws = new WebSocket(join.url);
  state.ws = ws;
  ws.onopen = () => ws.send(JSON.stringify({ type: "join", token: join.token, audio: false, video: false }));
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (state.ws === ws) handle(msg).catch((err) => console.error("watch:", err));
  };
  ws.onclose = () => { if (state.ws === ws && state.playing) stopped("The connection to the broadcast dropped.", true); };
}

function send(message) {
  if (state.ws?.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

async function handle(msg) {
  switch (msg.type) {
    case "welcome": {
      state.people = new Map(msg.participants.map((p) => [p.id, p]));
      state.pc?.close();
      const pc = new RTCPeerConnection({ iceServers: msg.iceServers || [], bundlePolicy: "max-bundle" });
      state.pc = pc;
      pc.onicecandidate = (e) => { if (e.candidate) send({ type: "candidate", candidate: e.candidate.toJSON() }); };
      pc.ontrack = () => attach();
      pc.onconnectionstatechange = () => {
        if (state.pc !== pc) return;
        if (pc.connectionState === "connected") {
          state.playing = true;
          $("watch-play").hidden = true;
          status("Live. You are watching the meeting.");
        } else if (pc.connectionState === "failed") {
          stopped("The connection to the broadcast failed.", true);
        }
      };
      break;
    }
    case "offer":
      await state.pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      await state.pc.setLocalDescription();
      send({ type: "answer", sdp: state.pc.localDescription.sdp });
      attach();
      break;
    case "slots":
      state.slots = msg.slots || {};
      attach();
      break;
    case "joined":
    case "state":
      state.people.set(msg.participant.id, msg.participant);
      attach();
      break;
    case "left":
      state.people.delete(msg.id);
      break;
    case "caption":
      caption(msg);
      break;
    case "error":
      if (msg.code === "revoked" || msg.code === "bad_token") stopped(msg.message, false);
      break;
    case "bye":
      stopped(msg.message || msg.reason || "The broadcast closed the connection.", !msg.message);
      break;
    default:
      break;
  }
}

/** Puts the slot streams where they belong: the one video on the stage, each audio in its own element. */
function attach() {
  const pc = state.pc;
  if (!pc) return;
  const sinks = $("watch-audio");
  for (const t of pc.getTransceivers()) {
    const slot = state.slots[t.mid];
    const track = t.receiver.track;
    if (!track) continue;
    if (track.kind === "video") {
      const video = $("watch-video");
      if (slot) {
        if (!video.srcObject || video.srcObject.getTracks()[0] !== track) video.srcObject = new MediaStream([track]);
        video.play().catch(() => {});
        const who = state.people.get(slot.participant)?.name;
        $("watch-speaker").textContent = who ? (slot.source === "screen" ? `${who}'s screen` : who) : "";
      }
    } else {
      let audio = sinks.querySelector(`audio[data-mid="${t.mid}"]`);
      if (!audio) {
        audio = el("audio", { autoplay: true, dataset: { mid: t.mid } });
        audio.srcObject = new MediaStream([track]);
        sinks.append(audio);
      }
      audio.volume = Number($("watch-volume").value);
      audio.play().catch(() => {});
    }
  }
}

function stopped(message, canRetry) {
  state.playing = false;
  const ws = state.ws;
  state.ws = null;
  ws?.close();
  state.pc?.close();
  state.pc = null;
  $("watch-video").srcObject = null;
  $("watch-audio").replaceChildren();
  status(message);
  const button = $("watch-play");
  button.hidden = false;
  button.disabled = !canRetry || !state.live || state.over;
  $("watch-play-label").textContent = "Play";
}

// -- captions and text size ------------------------------------------------------------------------

function caption(msg) {
  if (!state.captions || typeof msg.text !== "string") return;
  const box = $("watch-captions");
  let line = box.querySelector(`[data-utterance="${CSS.escape(msg.utterance)}"]`);
  if (!line) {
    line = el("p", { class: "caption-line", dataset: { utterance: msg.utterance } });
    box.append(line);
    while (box.childElementCount > 2) box.firstElementChild.remove();
  }
  const who = state.people.get(msg.participant)?.name;
  line.textContent = who ? `${who}: ${msg.text}` : msg.text;
  box.hidden = false;
  if (msg.final) setTimeout(() => { line.remove(); box.hidden = !box.childElementCount; }, CAPTION_HOLD);
}

function renderControls() {
  const toggle = $("watch-captions-toggle");
  toggle.setAttribute("aria-pressed", String(state.captions));
  toggle.textContent = state.captions ? "Captions on" : "Captions off";
  if (!state.captions) $("watch-captions").replaceChildren();
  $("watch-captions").hidden = !state.captions || !$("watch-captions").childElementCount;
  root.style.setProperty("--watch-text", String(SIZES[state.size]));
  $("text-smaller").disabled = state.size === 0;
  $("text-larger").disabled = state.size === SIZES.length - 1;
}

// -- the meeting's live state: the slide, the broadcast on or off, the meeting over -------------------

function applyState(snap) {
  if (!snap || snap.meeting_id !== meetingId) return;
  if (state.snap && snap.version < state.snap.version) return;
  state.snap = snap;
  const img = $("watch-slide");
  // the presented slide only (the chair or presenter moved to it): otherwise the speaker fills the stage
  const deck = snap.decks?.find((d) => d.id === snap.deck_id && d.status === "ready");
  if (deck && deck.pages) {
    const src = `${root.dataset.slidesBase}${deck.id}/pages/${snap.page}.png`;
    if (img.getAttribute("src") !== src) img.src = src;
    img.alt = `Slide ${snap.page} of ${deck.pages} (${deck.filename})`;
    img.hidden = false;
  } else {
    img.hidden = true;
  }
  root.classList.toggle("has-slide", !img.hidden);
  const live = !!snap.broadcast?.live && !snap.ended;
  if (snap.ended) {
    state.over = true;
    stopped("This meeting has ended. Thank you for watching.", false);
  } else if (live !== state.live) {
    state.live = live;
    $("watch-live").hidden = !live;
    if (live) {
      $("watch-play").disabled = false;
      if (!state.playing) status("The broadcast has started. Press Play to watch and listen.");
    } else {
      stopped("The broadcast has ended.", false);
    }
  }
}

function follow() {
  socket.timeout(10000).emit("meeting_join", { meeting_id: meetingId }, (err, ack) => {
    if (!err && ack?.ok) applyState(ack.state);
  });
}

// -- questions and asking to speak ---------------------------------------------------------------------

async function sendQuestion(e) {
  e.preventDefault();
  const text = $("question-text");
  const out = $("question-status");
  try {
    const res = await post(root.dataset.questionUrl, { body: text.value });
    text.value = "";
    out.textContent = res.to === "qa" ? "Thank you: your question is in the meeting's Q&A."
      : "Thank you: the chair has your question.";
  } catch (err) {
    out.textContent = err.message;
  }
}

async function askToSpeak() {
  const out = $("speak-status");
  try {
    await post(root.dataset.speakUrl);
    out.textContent = "The chair has your request. This page will tell you if they bring you in.";
    $("ask-speak").disabled = true;
  } catch (err) {
    out.textContent = err.message;
  }
}

function init() {
  $("watch-play").addEventListener("click", play);
  $("watch-volume").addEventListener("input", (e) => {
    for (const a of $("watch-audio").querySelectorAll("audio")) a.volume = Number(e.target.value);
  });
  $("watch-captions-toggle").addEventListener("click", () => {
    state.captions = !state.captions;
    localStorage.setItem("collab.watch.captions", state.captions ? "on" : "off");
    renderControls();
  });
  $("text-smaller").addEventListener("click", () => { state.size = Math.max(0, state.size - 1); save(); });
  $("text-larger").addEventListener("click", () => { state.size = Math.min(SIZES.length - 1, state.size + 1); save(); });
  $("question-form").addEventListener("submit", sendQuestion);
  $("ask-speak").addEventListener("click", askToSpeak);
  socket.on("connect", follow);
  if (socket.connected) follow();
  socket.on("meeting.state", applyState);
  socket.on("meeting.ended", (m) => { if (m.meeting_id === meetingId) applyState({ ...state.snap, ended: true, meeting_id: meetingId, version: Infinity }); });
  socket.on("meeting.brought_in", (m) => {
    if (m.meeting_id !== meetingId) return;
    $("speak-status").textContent = m.message;
    $("brought-in").hidden = false;
    $("join-link").focus();
  });
  socket.on("access.revoked", (m) => {
    if (m.room_id !== roomId) return;
    state.over = true;
    stopped(m.message, false);
    root.querySelectorAll("button, textarea, input").forEach((b) => { b.disabled = true; });
  });
  window.addEventListener("pagehide", () => socket.emit("meeting_leave", { meeting_id: meetingId }));
  renderControls();
}

function save() {
  localStorage.setItem("collab.watch.size", String(state.size));
  renderControls();
}

if (root) init();
