// The end of the call for good: the chair ended (or cancelled) the meeting, the chair removed this
// person, or they lost access to the room. meeting.js closes the call and lets go of the camera and
// microphone; this says so in a modal dialog made here (so it does not depend on the page's
// layout): its heading is the reason, it links to the minutes once they exist and back to the room.
import { byId as $, el } from "./dom.js";
import { root } from "./meeting_call.js";

let dialog = null;

function roomLink() {
  const href = root?.dataset.roomUrl || "/rooms";
  // The page's own "Back to <room>" link names the room; the dialog says the same.
  const named = [...document.querySelectorAll("a[href]")].find((a) => a.getAttribute("href") === href
    && /^Back to /.test(a.textContent.trim()));
  return el("a", { class: "button primary", href, text: named ? named.textContent.trim() : "Back to the room" });
}

/** Show `message` as the reason the call is over (once; later calls change nothing but the text). */
export function showEnded(message) {
  if (dialog) {
    $("ended-h").textContent = message;
    return;
  }
  const close = el("button", { type: "button", text: "Close", onclick: () => dialog.close() });
  dialog = el("dialog", { id: "ended-dialog", class: "meeting-ended", "aria-labelledby": "ended-h",
                          "aria-describedby": "ended-detail" },
    el("h2", { id: "ended-h", text: message }),
    el("p", { id: "ended-detail", text: "Your call is closed: your camera and microphone are off." }),
    el("p", { id: "ended-minutes", hidden: true }),
    el("p", { class: "actions" }, roomLink(), " ", close));
  // Closed (Close or Escape): focus goes to the page's own "the call is over" section.
  dialog.addEventListener("close", () => $("left-h")?.focus());
  document.body.append(dialog);
  dialog.showModal();
  dialog.querySelector("a").focus();
}

/** Add the link to the minutes thread (they may be posted after the end: a later state says so). */
export function showMinutes(threadId) {
  const p = $("ended-minutes");
  if (!p || !threadId || p.dataset.threadId === String(threadId)) return;
  p.dataset.threadId = String(threadId);
  p.replaceChildren(el("a", { href: `/threads/${Number(threadId)}`, text: "Read the minutes" }));
  p.hidden = false;
  const left = $("left-reason");
  if (left && !left.querySelector("a")) left.append(" ", el("a", { href: `/threads/${Number(threadId)}`, text: "Read the minutes" }));
}
