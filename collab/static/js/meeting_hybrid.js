// What the meeting page's panels share (issue 6, split by panel in issue 12): the meeting, the
// live state the server last sent (`ctx.snap`) and what this account may do in it (`ctx.me`),
// one way to ask the server (`send`, over the page's one Socket.IO connection) and to show its
// refusals, and how people are named in the state. meeting_room.js fills `ctx` and calls each
// panel's render; the panels import this module, never one another's page script.
import { csrfToken } from "./csrf.js";
import { byId as $ } from "./dom.js";
import { socket } from "./socket.js";

export const root = $("hybrid");

export const ctx = {
  meetingId: Number(root?.dataset.meetingId),
  roomId: Number(root?.dataset.roomId),
  ended: !!root?.dataset.ended,
  slidesBase: root?.dataset.slidesBase,
  // A guest in a room labelled above the lowest label sees which papers exist, never their files or slides.
  noFiles: !!root?.dataset.noFiles,
  snap: null,
  me: { chair: !!root?.dataset.chair, presenter: !!root?.dataset.chair, participant: false, votes: {} },
  device: null, // {head_count} once this laptop joined as the meeting room
  removed: false,
  // Hidden running tallies this person may see (they voted, or they chair: rooms.policy.sees_tally),
  // by key message id: from `me.tallies`, their km_vote answer and the `meeting.tally` event.
  tallies: {},
};

export function showError(message) {
  const p = $("hybrid-error");
  p.textContent = message || "";
  p.hidden = !message;
}

/** POSTs to one of the meeting's JSON routes (CSRF header); the answer, or null (the refusal is shown). */
export async function postJson(url) {
  try {
    const res = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) { showError(data.error?.message || "That did not work. Please try again."); return null; }
    showError("");
    return data;
  } catch {
    showError("The server did not answer. Check your connection and try again.");
    return null;
  }
}

/** Sends a meeting event; resolves to the server's answer, or null (the refusal is shown). */
export function send(event, data = {}) {
  return new Promise((resolve) => {
    socket.timeout(10000).emit(event, { meeting_id: ctx.meetingId, ...data }, (err, ack) => {
      if (err) {
        showError("The server did not answer. Check your connection; nothing was lost.");
        resolve(null);
        return;
      }
      if (!ack.ok) showError(ack.error.message);
      else showError("");
      resolve(ack.ok ? ack : null);
    });
  });
}

// People in the state: by account id where names are shown, else by their number in the meeting
// ("Participant n" of a non-attributed room). A key is "u<id>" or "p<number>".
export const personKey = (p) => (p.user_id ? `u${p.user_id}` : (p.number ? `p${p.number}` : null));
export const personRef = (key) => (key[0] === "u" ? { user_id: Number(key.slice(1)) } : { participant: Number(key.slice(1)) });
export const isMe = (p) => (p.user_id != null && p.user_id === ctx.me.id) || (p.number != null && p.number === ctx.me.number);

/** Whether this page is in the call (meeting.js shows #call once joined). */
export function inCall() { return !!$("call") && !$("call").hidden; }

/** Sets a node's text only when it changes, so a live region speaks only news. */
export function setText(node, text) {
  if (node && node.textContent !== text) node.textContent = text;
}
