// The call on the meeting page: its state, shared by meeting.js (signalling, controls) and the
// modules it uses (meeting_devices.js, meeting_tiles.js), and the few ways it speaks: to the
// media worker (send), to screen readers (say), in the status line (status) and in the
// connection quality line (measureQuality).
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

// -- quality -------------------------------------------------------------------------------

/** The "Connection: good/fair/poor" line, from the peer connection's statistics. */
export async function measureQuality() {
  const pc = state.pc;
  const el = $("quality");
  if (!pc || !el) return;
  let rtt = null; let lost = 0; let received = 0;
  const stats = await pc.getStats();
  // The call may have closed (or been replaced) while the statistics were gathered: its line then says so.
  if (state.pc !== pc) return;
  stats.forEach((s) => {
    if (s.type === "candidate-pair" && s.nominated && s.state === "succeeded" && s.currentRoundTripTime != null) rtt = s.currentRoundTripTime;
    if (s.type === "inbound-rtp") { lost += s.packetsLost || 0; received += s.packetsReceived || 0; }
  });
  const prev = state.lastStats || { lost: 0, received: 0 };
  state.lastStats = { lost, received };
  const dl = lost - prev.lost; const dr = received - prev.received;
  const loss = dl + dr > 0 ? dl / (dl + dr) : 0;
  let level = "good";
  if (pc.connectionState !== "connected") level = "poor";
  else if (loss > 0.08 || (rtt != null && rtt > 0.6)) level = "poor";
  else if (loss > 0.02 || (rtt != null && rtt > 0.25)) level = "fair";
  // The worker's estimate of this downlink (media/bandwidth.py) can only make the level worse.
  const bw = state.bandwidth;
  if (bw?.level === "weak") level = "poor";
  else if (bw?.level === "fair" && level === "good") level = "fair";
  el.className = `quality quality-${level}`;
  let detail = rtt != null ? `, ${Math.round(rtt * 1000)} ms round trip, ${(loss * 100).toFixed(1)}% lost` : "";
  if (bw?.estimate) detail += `, about ${(bw.estimate / 1e6).toFixed(1)} Mbit/s`;
  el.textContent = `Connection: ${level}${detail}`;
  el.dataset.level = level;
}
