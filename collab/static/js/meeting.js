// Meeting page: pre-join check, then one RTCPeerConnection to the media worker (SFU).
// The worker always offers; we answer. It forwards the cameras of the most recent speakers
// and the voices of the people speaking now through "slots" (transceivers) that it maps to
// participants with `slots` messages. Reconnects by itself when the network or worker drops, but
// never once the call is over for good (`over`: the chair ended the meeting, removed this person,
// or the room was lost), whichever says so first: the server's event or the worker's "bye".
import { csrfToken } from "./csrf.js";
import { byId as $ } from "./dom.js";
import { measureQuality, root, say, send, state, status } from "./meeting_call.js";
import "./meeting_captions.js"; // captions over the stage and the transcript panel (issue 16)
import { cameraConstraints, cameraProblem, preview, release } from "./meeting_devices.js";
import { showEnded, showMinutes } from "./meeting_end.js";
import { socket } from "./socket.js";
import { applySlots, onSpeaking, removePerson, renderPerson, showOwnVideo, transceiverFor, updateCount } from "./meeting_tiles.js";

const RECONNECT_DELAYS = [250, 500, 750, 1000]; // then every second; every 3 s after 15 s
const QUALITY_EVERY = 2000;

// -- signalling ------------------------------------------------------------------------------

async function fetchJoin() {
  // A token lasts a couple of minutes: reuse it while reconnecting instead of asking every second.
  if (state.join && Date.now() < state.join.validUntil) return state.join;
  const resp = await fetch(state.tokenUrl, {
    method: "POST", credentials: "same-origin",
    headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    const err = new Error(body.error?.message || "The meeting could not be joined.");
    err.fatal = resp.status === 403 || resp.status === 404;
    throw err;
  }
  body.validUntil = Date.now() + (body.expires_in - 20) * 1000;
  state.join = body;
  return body;
}

async function connect() {
  const join = await fetchJoin();
  if (state.leaving) throw new Error("The call was closed.");   // ended while the token was on its way
  state.role = join.role;
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(join.url);
    state.ws = ws;
    let opened = false;
    ws.onopen = () => {
      if (state.ws !== ws) { ws.close(); reject(new Error("The call was closed.")); return; }
      opened = true;
      ws.send(JSON.stringify({ type: "join", token: join.token, audio: !state.muted && !!state.local?.getAudioTracks().length,
        video: !state.cameraOff && !!state.local?.getVideoTracks().length }));
      resolve();
    };
    ws.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      // (A message being handled when the call closed may fail on the closed peer connection: no matter.)
      state.queue = state.queue.then(() => handle(msg, ws))
        .catch((err) => { if (state.ws === ws) console.error("meeting:", err); });
    };
    ws.onclose = () => {
      if (!opened) { reject(new Error("The media server did not answer.")); return; }
      // After the messages before it (a "bye" saying why the worker closed it comes first).
      state.queue = state.queue.then(() => {
        if (state.ws === ws && !state.leaving && !state.bye) lost("The connection to the media server dropped.");
      });
    };
    ws.onerror = () => {};
  });
}

function newPeerConnection(iceServers) {
  const pc = new RTCPeerConnection({ iceServers, bundlePolicy: "max-bundle" });
  pc.onicecandidate = (ev) => {
    if (ev.candidate) send({ type: "candidate", candidate: ev.candidate.toJSON() });
  };
  pc.ontrack = () => applySlots();
  pc.onconnectionstatechange = () => {
    if (state.pc !== pc) return;
    const s = pc.connectionState;
    if (s === "connected") {
      if (state.lostAt) {
        const secs = ((Date.now() - state.lostAt) / 1000).toFixed(1);
        status(`Reconnected after ${secs} seconds.`);
        say("Reconnected to the meeting.");
        state.lostAt = null;
      } else {
        status(state.note || "");
      }
      state.reconnectAttempt = 0;
    } else if (s === "failed") {
      lost("The media connection failed.");
    } else if (s === "disconnected") {
      setTimeout(() => { if (state.pc === pc && pc.connectionState === "disconnected") lost("The network dropped."); }, 2000);
    }
  };
  return pc;
}

async function handle(msg, ws) {
  if (ws !== state.ws) return; // from a connection closed since (left, ended, replaced)
  switch (msg.type) {
    case "welcome": {
      state.people = new Map();
      state.paused = {};
      state.lowOnly = {};
      for (const p of msg.participants) state.people.set(p.id, p);
      if (state.pc) state.pc.close();
      state.pc = newPeerConnection(msg.iceServers || []);
      state.slots = {};
      state.attached = new Map();
      $("audio-sinks").replaceChildren();
      for (const tile of [...$("grid").querySelectorAll(".tile")]) {
        const id = Number(tile.dataset.participantId);
        if (id !== state.meId || tile.dataset.screenOf) tile.remove();
      }
      showOwnVideo();
      for (const p of state.people.values()) renderPerson(p);
      document.dispatchEvent(new CustomEvent("collab:viewers", { detail: { count: msg.viewers || 0 } }));
      if (state.pins.size) send({ type: "pin", ids: [...state.pins].filter((id) => state.people.has(id)) });
      if (state.audioOnly) send({ type: "receive", video: false });
      if (state.sharingWanted && state.screen) send({ type: "state", screen: true });
      updateCount();
      break;
    }
    case "offer": {
      const pc = state.pc;
      await pc.setRemoteDescription({ type: "offer", sdp: msg.sdp });
      state.publish = msg.publish || {};
      for (const t of pc.getTransceivers()) {
        if (t.mid === state.publish.audio) await attach(t, state.local?.getAudioTracks()[0] || null);
        else if (t.mid === state.publish.video) await attach(t, state.cameraOff ? null : state.local?.getVideoTracks()[0] || null);
        else if (t.mid === state.publish.screen) await attach(t, state.screen?.getVideoTracks()[0] || null);
      }
      await pc.setLocalDescription();
      send({ type: "answer", sdp: pc.localDescription.sdp });
      await capBitrate(pc);
      applySlots();
      break;
    }
    case "slots":
      state.slots = msg.slots || {};
      applySlots();
      break;
    case "pause":
      // Nobody is being shown this camera (or screen) now: stop encoding it until someone is. Or nobody
      // is shown it large ("low_only"): encode only its thumbnail layer.
      state.paused[msg.source] = !!msg.paused;
      state.lowOnly[msg.source] = !!msg.low_only;
      if (state.pc) await capBitrate(state.pc);
      break;
    case "joined":
      state.people.set(msg.participant.id, msg.participant);
      renderPerson(msg.participant);
      say(`${msg.participant.name} joined the meeting.`);
      updateCount();
      break;
    case "left": {
      const p = state.people.get(msg.id);
      state.people.delete(msg.id);
      removePerson(msg.id);
      if (p) say(`${p.name} left the meeting.`);
      updateCount();
      break;
    }
    case "state": {
      const p = msg.participant;
      if (p.id === state.meId) break;
      state.people.set(p.id, p);
      renderPerson(p);
      break;
    }
    case "speaking":
      onSpeaking(new Set(msg.ids));
      break;
    case "viewers":
      // How many watch the web broadcast (counted by the worker): shown by meeting_broadcast.js.
      document.dispatchEvent(new CustomEvent("collab:viewers", { detail: { count: msg.count } }));
      break;
    case "caption":
    case "caption_note":
      // Captions made by the worker (media/captions/): shown by meeting_captions.js.
      document.dispatchEvent(new CustomEvent("meeting:caption", { detail: msg }));
      break;
    case "bandwidth":
      onBandwidth(msg);
      break;
    case "error":
      console.warn("meeting worker:", msg.code, msg.message);
      if (msg.code === "bad_token") { state.join = null; lost("The meeting pass expired."); }
      // The web app revoked this pass (removed, meeting ended, no longer in the room): do not retry.
      if (msg.code === "revoked") over(msg.message);
      break;
    case "bye":
      // {reason: text} when the worker closes the call (restart, another window); {reason: code,
      // message: text} when the web app took this person's place: removed, meeting ended, access lost.
      state.bye = true;
      if (msg.message) over(msg.message);
      else finish(msg.reason || "The meeting closed your connection.", /* canRejoin */ true);
      break;
    default:
      break;
  }
}

/** The worker fitted what it sends to this person's connection (media/bandwidth.py): say so, and let
 * the connection indicator use its estimate. */
function onBandwidth(msg) {
  const before = state.bandwidth?.text || "";
  let text = "";
  if (msg.cut > 0 && msg.cameras === 0) text = "Your connection is weak: showing the speaker only.";
  else if (msg.cut > 0) text = `Your connection is slow: showing the speaker and ${msg.cameras} other camera${msg.cameras === 1 ? "" : "s"}.`;
  else if (msg.stageLow) text = "Your connection is weak: the speaker’s video is shown in low quality.";
  state.bandwidth = { ...msg, text };
  const el = $("weak-link");
  if (el && el.textContent !== text) el.textContent = text;
  if (!text && before) say("Your connection recovered: showing everyone again.");
  measureQuality().catch(() => {});
}

// Everyone receives several cameras, many at home: keep each one modest. (The worker forwards the
// encoded frames as they are, so the publisher's bitrate is what every subscriber downloads.)
const MAX_BITRATE = { video: 350_000, screen: 1_200_000, audio: 40_000 };
const LOW_LAYER_BITRATE = 100_000;

async function capBitrate(pc) {
  for (const [name, bitrate] of Object.entries(MAX_BITRATE)) {
    const t = transceiverFor(state.publish[name]);
    if (!t || pc.signalingState !== "stable") continue;
    const params = t.sender.getParameters();
    if (!params.encodings || !params.encodings.length) continue;
    const on = !state.paused[name];
    // With simulcast (the worker's offer asked for layers "l" and "h", media/simulcast.py) the browser
    // made one encoding per layer: a quarter-size thumbnail layer and the full one.
    const wanted = params.encodings.map((e) => (e.rid === "l"
      ? { maxBitrate: LOW_LAYER_BITRATE, scaleResolutionDownBy: 4, active: on }
      : { maxBitrate: bitrate, active: on && !(state.lowOnly[name] && e.rid) }));
    if (params.encodings.every((e, i) => e.maxBitrate === wanted[i].maxBitrate && e.active === wanted[i].active
      && (wanted[i].scaleResolutionDownBy === undefined || e.scaleResolutionDownBy === wanted[i].scaleResolutionDownBy))) continue;
    params.encodings.forEach((e, i) => Object.assign(e, wanted[i]));
    try { await t.sender.setParameters(params); } catch (err) { console.warn("setParameters:", err); }
  }
}

async function attach(transceiver, track) {
  transceiver.direction = "sendonly";
  if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
}

function publishTrack(name, track) {
  const t = transceiverFor(state.publish[name]);
  if (t) t.sender.replaceTrack(track).catch((err) => console.warn("replaceTrack:", err));
}

// -- reconnecting -----------------------------------------------------------------------------

function lost(reason) {
  if (state.leaving || state.bye || state.over || state.reconnectTimer) return;
  if (!state.lostAt) state.lostAt = Date.now();
  status(`${reason} Reconnecting…`);
  say("Connection lost. Reconnecting…");
  const delay = Date.now() - state.lostAt > 15000 ? 3000
    : RECONNECT_DELAYS[Math.min(state.reconnectAttempt, RECONNECT_DELAYS.length - 1)];
  state.reconnectAttempt += 1;
  state.reconnectTimer = setTimeout(reconnect, delay);
}

async function reconnect() {
  state.reconnectTimer = null;
  if (state.leaving || state.over) return;
  const old = state.ws;
  state.ws = null;
  try { old?.close(); } catch { /* already closed */ }
  if (state.pc) { state.pc.close(); state.pc = null; }
  try {
    await connect();
    if (Date.now() - state.lostAt > 10000) status("Reconnecting is taking longer than usual…");
  } catch (err) {
    if (state.leaving || state.over) return;
    if (err.fatal) { over(err.message); return; } // ended, removed, locked out: final
    lost(Date.now() - state.lostAt > 10000 ? "Still trying to reach the meeting." : "The meeting did not answer.");
  }
}

// -- controls ------------------------------------------------------------------------------

function setPressed(id, pressed, label) {
  const b = $(id);
  if (!b) return;
  b.setAttribute("aria-pressed", String(pressed));
  b.firstChild.textContent = `${label} `;
}

function toggleMute() {
  if (state.role === "observer") return;
  state.muted = !state.muted;
  state.local?.getAudioTracks().forEach((t) => { t.enabled = !state.muted; });
  setPressed("mute-button", state.muted, state.muted ? "Unmute" : "Mute");
  send({ type: "state", audio: !state.muted });
  showOwnVideo();
  say(state.muted ? "You are muted." : "You are unmuted.");
}

async function toggleCamera() {
  if (state.role === "observer") return;
  if (!state.cameraOff) {
    state.cameraOff = true;
    state.local?.getVideoTracks().forEach((t) => { t.stop(); state.local.removeTrack(t); });
    publishTrack("video", null);
  } else {
    try {
      const cam = $("camera-select")?.value;
      const s = await navigator.mediaDevices.getUserMedia({ video: cameraConstraints(cam) });
      const track = s.getVideoTracks()[0];
      if (!state.joined) { track.stop(); return; } // the call ended meanwhile
      if (!state.local) state.local = new MediaStream();
      state.local.addTrack(track);
      publishTrack("video", track);
      state.cameraOff = false;
      if (state.note) { state.note = ""; status(""); }
    } catch (err) {
      state.note = `Your camera is off. ${cameraProblem(err)}`;
      status(state.note);
      say(state.note);
      return;
    }
  }
  setPressed("camera-button", state.cameraOff, state.cameraOff ? "Start camera" : "Stop camera");
  send({ type: "state", video: !state.cameraOff });
  showOwnVideo();
  say(state.cameraOff ? "Your camera is off." : "Your camera is on.");
}

async function toggleScreen() {
  if (state.role === "observer") return;
  if (state.screen) { stopScreen(); return; }
  try {
    state.screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 10, max: 15 } }, audio: false });
  } catch {
    say("Screen sharing was cancelled.");
    return;
  }
  const track = state.screen.getVideoTracks()[0];
  if (!state.joined) { track.stop(); state.screen = null; return; } // the call ended while the browser asked
  track.contentHint = "detail";
  track.addEventListener("ended", stopScreen);
  state.sharingWanted = true;
  publishTrack("screen", track);
  send({ type: "state", screen: true });
  setPressed("screen-button", true, "Stop sharing");
  say("You are sharing your screen.");
}

function stopScreen() {
  if (!state.screen) return;
  state.screen.getTracks().forEach((t) => t.stop());
  state.screen = null;
  state.sharingWanted = false;
  publishTrack("screen", null);
  send({ type: "state", screen: false });
  setPressed("screen-button", false, "Share screen");
  say("You stopped sharing your screen.");
}

function toggleAudioOnly() {
  state.audioOnly = !state.audioOnly;
  send({ type: "receive", video: !state.audioOnly });
  setPressed("audio-only-button", state.audioOnly, state.audioOnly ? "Show video" : "Audio only");
  root.classList.toggle("audio-only", state.audioOnly);
  say(state.audioOnly ? "Audio only: incoming video is stopped." : "Incoming video is back on.");
}

function finish(reason, canRejoin) {
  state.leaving = true;
  clearTimeout(state.reconnectTimer);
  state.reconnectTimer = null;
  clearInterval(state.qualityTimer);
  const quality = $("quality");
  if (quality) { quality.className = "quality quality-unknown"; quality.textContent = "Connection: closed"; delete quality.dataset.level; }
  send({ type: "leave" });
  const ws = state.ws;
  state.ws = null;
  setTimeout(() => { try { ws?.close(); } catch { /* closed */ } }, 50);
  state.pc?.close();
  state.pc = null;
  release(); // the camera, the microphone and a shared screen: their lights go off
  state.sharingWanted = false;
  setPressed("screen-button", false, "Share screen");
  $("grid")?.replaceChildren();
  $("audio-sinks")?.replaceChildren();
  if ($("call")) $("call").hidden = true;
  if ($("left")) $("left").hidden = false;
  if ($("left-reason")) $("left-reason").textContent = reason;
  if ($("rejoin-button")) $("rejoin-button").hidden = !canRejoin;
  $("left-h")?.focus();
  state.joined = false;
}

/** The call is over for good (`message` says why): closed, devices released, no reconnecting, no
 * joining again from this page; said in a dialog. `minutesId`: the minutes thread, when there is one. */
function over(message, minutesId = null) {
  if (!state.over) {
    state.over = true;
    state.bye = true;
    finish(message, /* canRejoin */ false);
    if ($("prejoin")) $("prejoin").hidden = true;
    $("join-button")?.setAttribute("aria-disabled", "true");
    if ($("left-h")) $("left-h").textContent = message;
    showEnded(message);
  }
  if (minutesId) showMinutes(minutesId);
}

function leave() {
  const wasJoined = state.joined;
  finish("You left the meeting.", true);
  state.join = null; // a later Join asks for a new token, so the server records the return
  // The person may stay on the page: tell the server they are no longer in the call (attendance).
  if (wasJoined && root?.dataset.meetingId) {
    fetch(`/meetings/${root.dataset.meetingId}/call/leave`, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    }).catch(() => { /* offline: the server ends the span when the heartbeats stop */ });
  }
}

function setBusy(busy) {
  // The button stays where it is (and keeps focus) but shows that Join is under way.
  const button = $("join-button");
  state.joining = busy;
  button.setAttribute("aria-disabled", String(busy || state.over));
  if (busy) {
    button.dataset.label = button.textContent;
    button.setAttribute("aria-busy", "true");
    button.textContent = "Joining…";
  } else {
    button.removeAttribute("aria-busy");
    if (button.dataset.label) button.textContent = button.dataset.label;
  }
}

async function join() {
  if (state.joining || state.over) return;
  setBusy(true);
  $("join-error").hidden = true;
  try {
    // Pressed before the camera and microphone answered: wait for them rather than join without.
    if (state.devicesPending) $("preview-status").textContent = "Starting your camera and microphone…";
    for (let check; check !== state.devices;) { check = state.devices; await check; } // the latest choice
    if (state.over) return;
    state.muted = !!$("join-muted")?.checked;
    const chosenOff = !!$("join-camera-off")?.checked;
    state.cameraOff = chosenOff || !state.local?.getVideoTracks().length;
    // No camera although one was wanted: the call says why (refused, none found, in use).
    state.note = state.cameraOff && !chosenOff && state.role !== "observer"
      ? `Joined without your camera. ${state.cameraProblem || "The camera could not be started."}` : "";
    state.local?.getAudioTracks().forEach((t) => { t.enabled = !state.muted; });
    state.leaving = false;
    state.bye = false;
    state.lostAt = null;
    state.meterStop?.();
    await connect();
  } catch (err) {
    if (state.over) return;
    $("join-error").textContent = err.message;
    $("join-error").hidden = false;
    return;
  } finally {
    setBusy(false);
  }
  if (state.over) return;
  state.joined = true;
  $("prejoin").hidden = true;
  $("left").hidden = true;
  $("call").hidden = false;
  setPressed("mute-button", state.muted, state.muted ? "Unmute" : "Mute");
  setPressed("camera-button", state.cameraOff, state.cameraOff ? "Start camera" : "Stop camera");
  status(state.note || "Joining…");
  say(state.note || "You joined the meeting.");
  state.qualityTimer = setInterval(() => measureQuality().catch(() => {}), QUALITY_EVERY);
  $("mute-button")?.focus();
}

async function rejoin() {
  if (state.over) return;
  $("left").hidden = true;
  $("prejoin").hidden = false;
  await preview();
  $("join-button").focus();
}

function shortcuts(ev) {
  if (!state.joined || !ev.altKey || !ev.shiftKey || ev.ctrlKey || ev.metaKey) return;
  const action = { KeyM: toggleMute, KeyV: toggleCamera, KeyS: toggleScreen, KeyA: toggleAudioOnly, KeyL: leave }[ev.code];
  if (action) { ev.preventDefault(); action(); }
}

function init() {
  if (!root || !$("prejoin")) return;
  if (!window.RTCPeerConnection || !navigator.mediaDevices) {
    $("preview-status").textContent = "This browser cannot take part in video meetings. Please use a current Chrome, Edge, Firefox or Safari.";
    $("join-button").disabled = true;
    return;
  }
  $("join-button").addEventListener("click", join);
  $("rejoin-button").addEventListener("click", rejoin);
  $("mute-button")?.addEventListener("click", toggleMute);
  $("camera-button")?.addEventListener("click", toggleCamera);
  $("screen-button")?.addEventListener("click", toggleScreen);
  $("audio-only-button").addEventListener("click", toggleAudioOnly);
  $("leave-button").addEventListener("click", leave);
  $("camera-select")?.addEventListener("change", preview);
  $("mic-select")?.addEventListener("change", preview);
  $("join-camera-off")?.addEventListener("change", preview);
  document.addEventListener("keydown", shortcuts);
  window.addEventListener("pagehide", () => { if (state.joined) send({ type: "leave" }); });
  // The server's word that the call is over for good (sent after its commit; docs/realtime.md).
  const meetingId = Number(root.dataset.meetingId);
  const roomId = Number(root.dataset.roomId || $("hybrid")?.dataset.roomId) || null;
  socket.on("meeting.ended", (m) => { if (m.meeting_id === meetingId) over(m.message, m.minutes_thread_id); });
  socket.on("meeting.state", (m) => { if (m.meeting_id === meetingId && state.over) showMinutes(m.minutes_thread_id); });
  socket.on("meeting.removed", (m) => { if (m.meeting_id === meetingId) over(m.message); });
  socket.on("access.revoked", (m) => { if (roomId && m.room_id === roomId) over(m.message); });
  if (!window.isSecureContext) {
    $("preview-status").textContent = "Camera and microphone need a secure (https) address.";
  }
  preview().catch((err) => { $("preview-status").textContent = `Camera check failed: ${err.message}`; });
  // A handle for diagnostics (and the browser tests): the live peer connection.
  window.collabMeeting = { get pc() { return state.pc; }, state };
}

init();
