// Captions on the meeting page (issue 16): the media worker transcribes each speaker (media/captions/)
// and sends {type: "caption", participant, utterance, text, final, start, end}; meeting.js passes them
// on as "meeting:caption" events. Shown, when this person turned captions on (the toolbar's Captions
// button or Alt+Shift+C, remembered for the account), as a line over the stage and in the transcript
// panel: a scrollable log with the speaker's name (or "Participant n" in a non-attributed room: the
// worker only knows the name its token carries). The overlay is hidden from screen readers: the log
// says the same once, final captions only.
import { csrfToken } from "./csrf.js";
import { byId as $ } from "./dom.js";
import { root, say, state } from "./meeting_call.js";

const OVERLAY_LINES = 2;
const OVERLAY_HOLD = 6000; // ms a final caption stays over the stage
const LOG_LIMIT = 500; // entries kept in the panel

let on = root?.dataset.captions === "on";
const live = new Map(); // utterance → {entry in the log, line over the stage}

function speaker(id) {
  if (id === state.meId) return `${state.meName} (you)`;
  return state.people.get(id)?.name || "Someone";
}

function render() {
  const button = $("captions-button");
  if (button) {
    button.setAttribute("aria-pressed", String(on));
    button.querySelector(".tb-label").textContent = on ? "Captions on" : "Captions";
  }
  const panel = $("captions-panel");
  if (panel) panel.hidden = !on;
  const overlay = $("captions-overlay");
  if (overlay) overlay.hidden = !on || !overlay.childElementCount;
  root?.classList.toggle("captions-on", on);
}

async function toggle() {
  on = !on;
  render();
  say(on ? "Captions on." : "Captions off.");
  try {
    await fetch(root.dataset.captionsUrl, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: JSON.stringify({ captions: on }),
    });
  } catch {
    // Not remembered this time (offline): the toggle still works on this page.
  }
}

function overlayLine(msg) {
  const overlay = $("captions-overlay");
  if (!overlay) return null;
  let item = live.get(msg.utterance)?.line;
  if (!item) {
    item = document.createElement("p");
    item.className = "caption-line";
    overlay.appendChild(item);
    while (overlay.childElementCount > OVERLAY_LINES) overlay.firstElementChild.remove();
  }
  item.textContent = `${speaker(msg.participant)}: ${msg.text}`;
  if (msg.final) setTimeout(() => { item.remove(); render(); }, OVERLAY_HOLD);
  return item;
}

function logEntry(msg) {
  const log = $("captions-log");
  if (!log) return null;
  let entry = live.get(msg.utterance)?.entry;
  const stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 8; // follow unless scrolled back
  if (!entry) {
    entry = document.createElement("p");
    entry.className = "caption-entry";
    const who = document.createElement("strong");
    who.className = "caption-speaker";
    const text = document.createElement("span");
    text.className = "caption-text";
    entry.append(who, " ", text);
    log.appendChild(entry);
    while (log.childElementCount > LOG_LIMIT) log.firstElementChild.remove();
  }
  entry.querySelector(".caption-speaker").textContent = `${speaker(msg.participant)}:`;
  entry.querySelector(".caption-text").textContent = msg.text;
  entry.classList.toggle("partial", !msg.final);
  // Partial text changes as the engine hears more: only the final one is read out (aria-busy until then).
  entry.setAttribute("aria-busy", String(!msg.final));
  if (stick) log.scrollTop = log.scrollHeight;
  return entry;
}

function onCaption(ev) {
  const msg = ev.detail;
  if (msg.type === "caption_note") {
    const note = $("captions-note");
    if (note && on) note.textContent = msg.message;
    return;
  }
  if (typeof msg.text !== "string" || !msg.utterance) return;
  // Kept while captions are off too, so turning them on shows what was said meanwhile.
  const entry = logEntry(msg);
  const line = on ? overlayLine(msg) : null;
  if (msg.final) live.delete(msg.utterance);
  else live.set(msg.utterance, { entry, line });
  render();
}

// Over the stage (slides, a shared screen or the speaker), which the meeting page lays out elsewhere.
const stage = $("stage");
if (stage && $("captions-overlay")) stage.appendChild($("captions-overlay"));
document.addEventListener("meeting:caption", onCaption);
$("captions-button")?.addEventListener("click", toggle);
document.addEventListener("keydown", (e) => {
  if (e.altKey && e.shiftKey && !e.ctrlKey && !e.metaKey && (e.key === "C" || e.key === "c") && $("captions-button")
      && !$("call")?.hidden) {
    e.preventDefault();
    toggle();
  }
});
render();
