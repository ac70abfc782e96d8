// Camera and microphone: the pre-join check (preview, device lists, the microphone level) and
// the camera settings every call uses (modest: many people join from home).
import { byId as $ } from "./dom.js";
import { state } from "./meeting_call.js";

/** What to ask of the camera `deviceId` (or the default one). */
export function cameraConstraints(deviceId) {
  return { width: { ideal: 640 }, height: { ideal: 360 }, frameRate: { ideal: 15, max: 20 },
    ...(deviceId ? { deviceId: { exact: deviceId } } : {}) };
}

async function listDevices() {
  const cam = $("camera-select");
  const mic = $("mic-select");
  if (!cam || !mic || !navigator.mediaDevices?.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [select, kind, fallback] of [[cam, "videoinput", "Camera"], [mic, "audioinput", "Microphone"]]) {
    const current = select.value;
    select.replaceChildren();
    const list = devices.filter((d) => d.kind === kind);
    if (!list.length) select.append(new Option(`No ${fallback.toLowerCase()} found`, ""));
    list.forEach((d, i) => select.append(new Option(d.label || `${fallback} ${i + 1}`, d.deviceId)));
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }
}

/** Why the camera could not be used, from getUserMedia's error, in plain words. */
export function cameraProblem(err) {
  switch (err?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "Permission to use the camera was refused: allow the camera for this site in your browser's settings to be seen.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No camera was found.";
    case "NotReadableError":
    case "AbortError":
      return "The camera is in use by another program, or could not be started.";
    default:
      return "The camera could not be started.";
  }
}

async function acquire() {
  state.cameraProblem = "";
  if (state.role === "observer") return null;
  const cam = $("camera-select")?.value;
  const mic = $("mic-select")?.value;
  const wantVideo = !$("join-camera-off")?.checked;
  const audio = mic ? { deviceId: { exact: mic } } : true;
  const video = wantVideo ? cameraConstraints(cam) : false;
  if (state.local) state.local.getTracks().forEach((t) => t.stop());
  state.local = null;
  let stream = null;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio, video });
  } catch (err) {
    state.cameraProblem = wantVideo ? cameraProblem(err) : "";
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio, video: false });
      $("preview-status").textContent = wantVideo
        ? `${state.cameraProblem} You can join with your microphone only.`
        : "Your camera stays off.";
    } catch (err2) {
      $("preview-status").textContent = "We could not use your camera or microphone. You can still join to watch and listen.";
      return null;
    }
  }
  if (state.over) { // the call ended for good while the devices were starting: let go of them at once
    stream.getTracks().forEach((t) => t.stop());
    return null;
  }
  state.local = stream;
  return state.local;
}

/** The pre-join check: ask for the camera and microphone again (as chosen) and show them. Join waits
 * for the latest check (`state.devices`) rather than joining with a camera that has not arrived. */
export function preview() {
  const run = check();
  const settled = run.catch(() => {}).finally(() => {
    if (state.devices === settled) state.devicesPending = false;
  });
  state.devices = settled;
  state.devicesPending = true;
  return run;
}

async function check() {
  const stream = await acquire();
  const video = $("preview");
  if (video) video.srcObject = stream && stream.getVideoTracks().length ? stream : null;
  if (stream) {
    const hasVideo = stream.getVideoTracks().length > 0;
    $("preview-status").textContent = hasVideo ? "This is how you will look." : $("preview-status").textContent;
    startMeter(stream);
  }
  await listDevices();
}

/** Stop every camera, microphone and screen track this page holds (the camera light goes off). */
export function release() {
  state.meterStop?.();
  state.local?.getTracks().forEach((t) => t.stop());
  state.local = null;
  state.screen?.getTracks().forEach((t) => t.stop());
  state.screen = null;
  const video = $("preview");
  if (video) video.srcObject = null;
}

function startMeter(stream) {
  state.meterStop?.();
  const meter = $("mic-level");
  const track = stream.getAudioTracks()[0];
  if (!meter || !track || !window.AudioContext) return;
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 512;
  ctx.createMediaStreamSource(new MediaStream([track])).connect(analyser);
  const data = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(data);
    let sum = 0;
    for (const v of data) sum += v * v;
    const level = Math.min(1, Math.sqrt(sum / data.length) * 4);
    meter.value = level;
    meter.textContent = level > 0.05 ? "sound" : "silent";
  }, 150);
  state.meterStop = () => { clearInterval(timer); ctx.close(); state.meterStop = null; };
}
