// The tiles: one per person (their camera, or their initials), one per shared screen, in the
// filmstrip under the stage or, with "See everyone", a grid; which incoming track ("slot") shows
// whom; who is speaking; how many are in the call. Every change is told to the page as a
// `meeting:tiles` event, which the stage (meeting_stage.js) and People (meeting_people.js) follow.
import { byId as $ } from "./dom.js";
import { send, say, state } from "./meeting_call.js";

const SPEAKING_ANNOUNCE_GAP = 30000;

function changed() {
  document.dispatchEvent(new CustomEvent("meeting:tiles"));
}

function initials(name) {
  return (name || "?").split(/\s+/).filter(Boolean).slice(0, 2).map((w) => w[0].toUpperCase()).join("");
}

function tileFor(id, { screen = false } = {}) {
  const selector = screen ? `[data-screen-of="${id}"]` : `[data-participant-id="${id}"]`;
  let tile = $("grid").querySelector(`.tile${selector}`);
  if (tile) return tile;
  const person = state.people.get(id) || { id, name: id === state.meId ? state.meName : "Someone" };
  tile = $("tile-template").content.firstElementChild.cloneNode(true);
  if (screen) {
    tile.dataset.screenOf = String(id);
    tile.classList.add("tile-screen");
    tile.querySelector(".tile-pin").remove();
  } else {
    tile.dataset.participantId = String(id);
  }
  const name = id === state.meId ? `${state.meName} (you)` : person.name;
  tile.querySelector(".tile-name").textContent = screen ? `${person.name}’s screen` : name;
  tile.querySelector(".tile-initials").textContent = initials(person.name);
  tile.setAttribute("aria-label", screen ? `${person.name}’s screen` : name);
  const pin = tile.querySelector(".tile-pin");
  if (pin) {
    if (id === state.meId) pin.remove();
    else {
      pin.setAttribute("aria-label", `Pin ${person.name}`);
      pin.addEventListener("click", () => togglePin(id));
    }
  }
  if (id === state.meId && !screen) $("grid").prepend(tile);
  else $("grid").append(tile);
  changed();
  return tile;
}

export function renderPerson(p) {
  const tile = tileFor(p.id);
  tile.classList.toggle("speaking", !!p.speaking);
  tile.querySelector(".tile-mic").hidden = p.audio !== false;
  // The worker saw this camera's packets stop while it is on: the person's uplink is too weak.
  const stalled = !!p.stalled && p.id !== state.meId;
  tile.classList.toggle("stalled", stalled);
  tile.querySelector(".tile-stalled").hidden = !stalled;
  changed();
  if (p.id === state.meId) return;
  const pin = tile.querySelector(".tile-pin");
  if (pin) {
    pin.setAttribute("aria-pressed", String(state.pins.has(p.id)));
    pin.textContent = state.pins.has(p.id) ? "Unpin" : "Pin";
  }
}

export function removePerson(id) {
  for (const tile of $("grid").querySelectorAll(`[data-participant-id="${id}"], [data-screen-of="${id}"]`)) {
    const v = tile.querySelector("video");
    if (v) v.srcObject = null;
    tile.remove();
  }
  changed();
}

export function showOwnVideo() {
  const tile = tileFor(state.meId);
  const video = tile.querySelector("video");
  const track = state.local?.getVideoTracks()[0];
  if (track && !state.cameraOff) {
    video.srcObject = new MediaStream([track]);
    tile.classList.remove("no-video");
  } else {
    video.srcObject = null;
    tile.classList.add("no-video");
  }
  tile.querySelector(".tile-mic").hidden = !state.muted;
  changed();
}

function togglePin(id) {
  if (state.pins.has(id)) state.pins.delete(id);
  else state.pins.add(id);
  send({ type: "pin", ids: [...state.pins] });
  const p = state.people.get(id);
  if (p) renderPerson(p);
  say(state.pins.has(id) ? `${p?.name || "Participant"} pinned.` : `${p?.name || "Participant"} unpinned.`);
}

// -- slots: which incoming track shows whom ---------------------------------------------------

export function transceiverFor(mid) {
  return state.pc?.getTransceivers().find((t) => t.mid === mid);
}

export function applySlots() {
  if (!state.pc) return;
  const shown = new Set();
  for (const [mid, slot] of Object.entries(state.slots)) {
    const key = slot ? `${slot.participant}:${slot.source}` : null;
    const t = transceiverFor(mid);
    if (!t) continue;
    if (state.attached.get(mid) === key) {
      if (key) shown.add(key);
      continue;
    }
    detach(mid);
    if (!slot) continue;
    const track = t.receiver.track;
    if (slot.source === "audio") {
      let el = document.querySelector(`#audio-sinks audio[data-mid="${mid}"]`);
      if (!el) {
        el = document.createElement("audio");
        el.autoplay = true;
        el.dataset.mid = mid;
        $("audio-sinks").append(el);
      }
      el.srcObject = new MediaStream([track]);
      el.play().catch(() => {});
    } else {
      const tile = tileFor(slot.participant, { screen: slot.source === "screen" });
      const video = tile.querySelector("video");
      video.srcObject = new MediaStream([track]);
      video.play().catch(() => {});
      tile.classList.remove("no-video");
      tile.dataset.mid = mid;
    }
    state.attached.set(mid, key);
    shown.add(key);
  }
  // tiles whose video is no longer forwarded become name tiles; ended screen shares disappear
  for (const tile of $("grid").querySelectorAll(".tile")) {
    const id = Number(tile.dataset.participantId || tile.dataset.screenOf);
    if (id === state.meId && !tile.dataset.screenOf) continue;
    const key = `${id}:${tile.dataset.screenOf ? "screen" : "video"}`;
    if (!shown.has(key)) {
      if (tile.dataset.screenOf) tile.remove();
      else {
        tile.querySelector("video").srcObject = null;
        tile.classList.add("no-video");
        delete tile.dataset.mid;
      }
    }
  }
  changed();
}

function detach(mid) {
  const key = state.attached.get(mid);
  state.attached.delete(mid);
  if (!key) return;
  const el = document.querySelector(`#audio-sinks audio[data-mid="${mid}"]`);
  if (el && key.endsWith(":audio")) { el.srcObject = null; return; }
  const tile = $("grid").querySelector(`.tile[data-mid="${mid}"]`);
  if (tile) {
    tile.querySelector("video").srcObject = null;
    tile.classList.add("no-video");
    delete tile.dataset.mid;
  }
}

export function onSpeaking(ids) {
  const now = Date.now();
  for (const id of ids) {
    if (!state.speaking.has(id) && id !== state.meId) {
      const last = state.announcedSpeaking.get(id) || 0;
      const p = state.people.get(id);
      if (p && now - last > SPEAKING_ANNOUNCE_GAP) {
        say(`${p.name} is speaking.`);
        state.announcedSpeaking.set(id, now);
      }
    }
  }
  state.speaking = ids;
  for (const tile of $("grid").querySelectorAll(".tile[data-participant-id]")) {
    tile.classList.toggle("speaking", ids.has(Number(tile.dataset.participantId)));
  }
  changed();
}

export function updateCount() {
  const n = state.people.size + 1;
  $("call-h").textContent = `Meeting in progress: ${n} ${n === 1 ? "person" : "people"}`;
  changed();
}
