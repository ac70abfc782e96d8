// The call on the meeting page: its state, shared by meeting.js (signalling, controls) and the
// modules it uses (meeting_devices.js, meeting_tiles.js), and the few ways it speaks: to the
// media worker (send), to screen readers (say) and in the status line (status).
import { byId as $ } from "./dom.js";

export const root = $("meeting");

export const state = {
  meId: Number(root?.dataset.meId),
  meName: root?.dataset.meName || "You",
  role: root?.dataset.role || "member",
  tokenUrl: root?.dataset.tokenUrl,
  join: null, // the last token and worker URL, reused while still valid
  ws: null,
  pc: null,
  local: null, // MediaStream from the camera and microphone
  screen: null, // MediaStream of a shared screen
  muted: false,
  cameraOff: false,
  audioOnly: false,
  joined: false,
  joining: false, // Join was pressed: waiting for the devices, then the media worker
  leaving: false,
  bye: false,
  over: false, // the call is over for good (meeting ended, removed, room lost): never reconnect
  devices: Promise.resolve(), // the latest camera and microphone check (meeting_devices.js preview)
  devicesPending: false,
  cameraProblem: "", // why the camera could not be used, in plain words ("" if it could, or was not asked)
  note: "", // shown in the status line once connected (e.g. why the camera is off)
  publish: {}, // "audio" | "video" | "screen" → mid
  slots: {}, // mid → {participant, source} | null
  attached: new Map(), // mid → "participant:source" currently shown
  people: new Map(), // id → {id, name, audio, video, screen, speaking}
  paused: {}, // "video" | "screen" → true while the worker has paused it (nobody is shown it)
  pins: new Set(),
  speaking: new Set(),
  announcedSpeaking: new Map(),
  reconnectAttempt: 0,
  reconnectTimer: null,
  lostAt: null,
  queue: Promise.resolve(),
  lastStats: null,
  qualityTimer: null,
  meterStop: null,
};

export function say(text) {
  // Polite live region: joins, leaves, speakers, reconnecting.
  const log = $("announcer");
  if (!log) return;
  const p = document.createElement("p");
  p.textContent = text;
  log.appendChild(p);
  while (log.childElementCount > 5) log.firstElementChild.remove();
}

export function status(text) {
  const el = $("call-status");
  if (el) el.textContent = text;
}

export function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}
