// Recording on the meeting page (issue 16): everyone sees the "● Recording" badge in the meeting bar
// while it runs, and when it starts or stops they hear two short tones and their screen reader
// announces it; the Chair tab starts and stops it (rooms/meetings/recordings.py), or says why this
// room's meetings cannot be recorded.
import { byId as $ } from "./dom.js";
import { announce } from "./live_regions.js";
import { ctx, postJson, setText } from "./meeting_hybrid.js";

const box = document.querySelector(".recording-box");
let was = null;   // whether it was recording at the last state (null: no state yet)

function tones(rising) {
  // Two short tones, rising when recording starts and falling when it stops (heard by everyone in the call).
  try {
    const audio = new AudioContext();
    [0, 0.18].forEach((at, i) => {
      const osc = audio.createOscillator();
      const gain = audio.createGain();
      osc.frequency.value = (rising ? [660, 880] : [880, 660])[i];
      gain.gain.setValueAtTime(0.12, audio.currentTime + at);
      gain.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + at + 0.15);
      osc.connect(gain).connect(audio.destination);
      osc.start(audio.currentTime + at);
      osc.stop(audio.currentTime + at + 0.16);
    });
    setTimeout(() => audio.close(), 800);
  } catch { /* no audio output: the announcement and the badge still say it */ }
}

export function renderRecording() {
  const rec = ctx.snap?.recording || {};
  const live = !!rec.live;
  const badge = $("recording-badge");
  if (badge) {
    badge.hidden = !live;
    badge.title = live ? "This meeting is being recorded. Readers of the room can replay it." : "";
  }
  if (was !== null && was !== live) {
    announce(live ? "Recording started. This meeting is being recorded." : "Recording stopped.");
    tones(live);
  }
  was = live;
  if (!box) return;
  const toggle = $("recording-toggle");
  toggle.setAttribute("aria-pressed", String(live));
  setText(toggle, live ? "Stop recording" : "Start recording");
  toggle.disabled = !live && !rec.allowed;
  setText($("recording-status"), live ? "Recording. Everyone in the meeting can see this."
    : (rec.allowed ? "Not recording." : (rec.refusal || "This meeting cannot be recorded.")));
}

const post = postJson;

export function initRecording() {
  if (!box) return;
  $("recording-toggle").addEventListener("click", async () => {
    const live = !!ctx.snap?.recording?.live;
    const toggle = $("recording-toggle");
    toggle.disabled = true;
    await post(live ? box.dataset.stopUrl : box.dataset.startUrl);
    toggle.disabled = false;
  });
}
