// Raised hands: the queue in the order raised (the chair gives the floor or lowers a hand, and adds
// people in the room), this person's own hand (the Hands tab, the toolbar in the call, Alt+Shift+H),
// the chair's "give the floor" prompt (Unmute now / Stay muted), and "Mute everyone" or the chair's
// "Mute <name>" for this person arriving here: this page's microphone is muted at once (as in Jitsi,
// BigBlueButton or Teams) and says so; the focus stays where it was, and only this person can unmute.
import { clockTime } from "./dates.js";
import { byId as $, el } from "./dom.js";
import { ctx, inCall, isMe, send, setText } from "./meeting_hybrid.js";
import { setCount } from "./meeting_layout.js";
import { socket } from "./socket.js";

let knownHands = null;

function muted() { return $("mute-button")?.getAttribute("aria-pressed") === "true"; }

export function renderHands() {
  const { snap, me, ended } = ctx;
  const list = $("hand-list");
  setCount("hands", snap.hands.length, snap.hands.length === 1 ? "hand raised" : "hands raised");
  if (!list) return;
  list.replaceChildren();
  $("hand-empty").hidden = snap.hands.length > 0;
  const news = [];
  snap.hands.forEach((h, i) => {
    const was = knownHands?.get(h.id);
    if (knownHands && !was) news.push(`${h.name} raised a hand, number ${i + 1} in the queue.`);
    if (knownHands && h.floor && !was?.floor) news.push(`${h.name} has the floor.`);
    const li = el("li", { class: `hand${h.floor ? " has-floor" : ""}`, dataset: { handId: h.id } },
      el("span", { class: "hand-name", text: h.name }),
      h.in_room ? el("span", { class: "badge", text: "in the room" }) : null,
      h.floor ? el("strong", { class: "floor", text: " has the floor" }) : null,
      el("span", { class: "hint", text: ` raised ${clockTime(h.raised_at)}` }));
    if (me.chair && !ended) li.append(" ", ...handActions(h, i));
    list.append(li);
  });
  const now = new Set(snap.hands.map((h) => h.id));
  for (const [id, h] of knownHands || []) if (!now.has(id)) news.push(`${h.name}'s hand is lowered.`);
  if (news.length) $("hand-announcer").textContent = news.join(" ");
  knownHands = new Map(snap.hands.map((h) => [h.id, { name: h.name, floor: h.floor }]));
  const up = snap.hands.some(isMe);
  for (const b of [$("hand-button"), $("hand-toolbar")]) {
    if (!b) continue;
    b.setAttribute("aria-pressed", String(up));
    setText(b.firstChild, up ? (b.id === "hand-toolbar" ? "Lower hand" : "Lower my hand") : "Raise hand");
    b.disabled = !me.participant || ended;
  }
}

/** The chair's buttons for one raised hand (in the queue and in People). */
export function handActions(h, i) {
  const out = [];
  if (!h.floor) {
    out.push(el("button", { type: "button", class: "small", text: "Give the floor", "aria-label": `Give the floor to ${h.name}`,
                            onclick: () => send("meeting_floor", { hand_id: h.id }) }), " ");
  }
  out.push(el("button", { type: "button", class: "small", text: "Lower", "aria-label": `Lower ${h.name}'s hand (number ${i + 1})`,
                          onclick: () => send("meeting_hand_lower", { hand_id: h.id }) }));
  return out;
}

/** The chair muted this page's microphone (everyone's, or this person's): mute it now (pressing the
 * page's own Mute button, so the call and the tiles follow), or join muted; say so. */
function mutedByChair(inCallText, beforeJoinText) {
  const notice = $("mute-notice");
  let text;
  if (inCall()) {
    if (!muted()) $("mute-button").click();
    text = inCallText;
  } else if ($("join-muted")) {
    $("join-muted").checked = true;
    text = beforeJoinText;
  } else {
    return; // an observer: no microphone
  }
  $("floor-prompt").hidden = true;
  notice.hidden = false;   // shown first, so the status region speaks the new text
  notice.textContent = text;
}

function toggleHand() {
  const b = $("hand-button") || $("hand-toolbar");
  if (!b || b.disabled) return;
  send("meeting_hand", { up: b.getAttribute("aria-pressed") !== "true" });
}

export function initHands() {
  $("hand-button")?.addEventListener("click", toggleHand);
  $("hand-toolbar")?.addEventListener("click", toggleHand);
  document.addEventListener("keydown", (e) => {
    if (e.altKey && e.shiftKey && (e.key === "H" || e.key === "h") && ($("hand-button") || $("hand-toolbar"))) {
      e.preventDefault();
      toggleHand();
    }
  });
  $("hand-add")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("hand-add-name");
    if (await send("meeting_hand_add", { name: input.value })) input.value = "";
  });
  socket.on("meeting.floor", (m) => {
    if (m.meeting_id !== ctx.meetingId) return;
    $("mute-notice").hidden = true;
    $("floor-text").textContent = m.message;
    $("floor-unmute").textContent = inCall() ? "Unmute now" : "Join and speak";
    $("floor-prompt").hidden = false;
    $("floor-unmute").focus();
  });
  socket.on("meeting.mute", (m) => {
    const me = ctx.me;
    if (m.meeting_id !== ctx.meetingId || m.except === me.id || (m.except_number && m.except_number === me.number)) return;
    mutedByChair(`${m.by} muted everyone's microphone, yours too. Unmute when you want to speak.`,
                 `${m.by} muted everyone: you will join muted.`);
  });
  socket.on("meeting.mute_you", (m) => {
    if (m.meeting_id !== ctx.meetingId) return;
    mutedByChair(m.message, "The chair muted your microphone: you will join muted.");
  });
  $("floor-unmute")?.addEventListener("click", () => {
    $("floor-prompt").hidden = true;
    $("mute-notice").hidden = true;
    if (inCall()) {
      if (muted()) $("mute-button").click();
    } else if ($("join-button") && !$("join-button").disabled) {
      if ($("join-muted")) $("join-muted").checked = false;
      $("join-button").click();
    }
    $("mute-button")?.focus();
  });
  $("floor-dismiss")?.addEventListener("click", () => { $("floor-prompt").hidden = true; });
  $("mute-button")?.addEventListener("click", () => { if (!muted()) $("mute-notice").hidden = true; });
}
