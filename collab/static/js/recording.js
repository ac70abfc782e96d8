// The replay page of a meeting's recording (issue 16), the BigBlueButton way: the composed file plays
// (voices mixed, the slide of the moment with the speaker's camera in its corner), "Now showing" names the
// slide at the playing moment with a sharp copy to open full size, captions come from the corrected
// transcript, and "Jump to" is an index of what happened (slides, speakers, hands, votes and outcomes,
// chat) as buttons — Tab to one, Enter to go there — the entry of the playing moment marked as current.
// While the file is still being prepared the page shows its progress and asks again every two seconds.
import { byId as $, el } from "./dom.js";

const root = $("replay");
const video = $("replay-video");
let slides = [];

function clock(t) {
  const s = Math.floor(t);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function showSlide() {
  const now = video.currentTime + 0.05;
  const img = $("replay-slide");
  const link = $("replay-slide-link");
  let current = null;
  for (const s of slides) { if (s.t <= now) current = s; }
  link.hidden = !current;
  const text = current ? `Slide ${current.page}` : "No slide.";
  if ($("replay-now-text").textContent !== text) $("replay-now-text").textContent = text;
  if (current && img.dataset.url !== current.url) {
    img.dataset.url = current.url;
    img.src = current.url;
    link.href = current.url;
    img.alt = `Slide ${current.page}`;
  }
  let mark = null;
  for (const b of document.querySelectorAll("#replay-entries button")) {
    if (Number(b.dataset.t) <= now) mark = b;
  }
  for (const b of document.querySelectorAll("#replay-entries button[aria-current]")) {
    if (b !== mark) b.removeAttribute("aria-current");
  }
  if (mark && !mark.hasAttribute("aria-current")) mark.setAttribute("aria-current", "true");
}

function render(data) {
  slides = data.slides;
  const list = $("replay-entries");
  list.replaceChildren(...data.entries.map((e) => el("li", { class: `replay-entry replay-kind-${e.kind}` },
    el("button", { type: "button", class: "link-button", "data-t": String(e.t),
      onclick: () => { video.currentTime = e.t; showSlide(); video.focus(); } },
      el("span", { class: "replay-time", text: clock(e.t) }), " ", el("span", { text: e.text })))));
  $("replay-empty").hidden = data.entries.length > 0;
  showSlide();
}

async function load() {
  let data;
  try {
    const res = await fetch(root.dataset.timelineUrl, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!res.ok) throw new Error(String(res.status));
    data = await res.json();
  } catch {
    $("replay-status").textContent = "The server did not answer. This page will try again.";
    setTimeout(load, 5000);
    return;
  }
  if (data.status !== "ready") {
    const status = $("replay-status");
    const progress = $("replay-progress");
    progress.value = data.progress;
    status.textContent = data.status === "failed" ? (data.message || "This recording could not be prepared.")
      : data.status === "recording" ? "This meeting is still being recorded."
        : `Preparing the recording: ${data.progress} %`;
    if (data.status !== "failed" && data.status !== "gone") setTimeout(load, 2000);
    return;
  }
  $("replay-progress-box").hidden = true;
  $("replay-main").hidden = false;
  if (!video.getAttribute("src")) {
    $("replay-captions").src = root.dataset.captionsUrl;
    video.src = root.dataset.fileUrl;
  }
  render(data);
}

video.addEventListener("timeupdate", showSlide);
video.addEventListener("seeked", showSlide);
load();
