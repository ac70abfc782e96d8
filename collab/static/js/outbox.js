// The outbox: replies written on a thread page and sent over the socket, kept in localStorage
// until the server confirms them, so nothing written offline (or before a reload) is lost; it
// is sent again on every reconnection, and the server is idempotent on each post's client id.
import { forgetDraft, newClientId, readDraft, saveDraft } from "./drafts.js";
import { announce, banner } from "./live_regions.js";
import { socket } from "./socket.js";

const OUTBOX = "collab-outbox";
let threadId = null;
let viewer = { revoked: false };
let onPosted = () => {};

function readOutbox() {
  try { return JSON.parse(localStorage.getItem(OUTBOX) || "[]"); } catch { return []; }
}

function writeOutbox(items) {
  if (items.length) localStorage.setItem(OUTBOX, JSON.stringify(items));
  else localStorage.removeItem(OUTBOX);
}

function formFor(clientId) {
  for (const form of document.querySelectorAll("form[data-composer]")) {
    if (form.querySelector("[data-client-id]")?.value === clientId) return form;
  }
  return null;
}

function setStatus(form, text) {
  const status = form?.querySelector("[data-composer-status]");
  if (status) status.textContent = text;
}

function confirmed(entry, post) {
  writeOutbox(readOutbox().filter((e) => e.client_id !== entry.client_id));
  const draft = readDraft(entry.draft_key);
  if (draft === null || draft.clientId === entry.client_id) forgetDraft(entry.draft_key); // none, unreadable, or this post's
  const form = formFor(entry.client_id);
  if (form) {
    const textarea = form.querySelector("textarea[name=body]");
    textarea.readOnly = false;
    textarea.value = "";
    form.querySelector("[data-client-id]").value = newClientId();
    setStatus(form, "");
    const slot = form.closest("[data-reply-slot]");
    if (slot) slot.replaceChildren();
  }
  if (post && post.thread_id === threadId) onPosted(post);
  announce("Your reply was posted.");
}

function refused(entry, error) {
  const form = formFor(entry.client_id);
  if (error.code === "rate_limited") {
    setStatus(form, `${error.message} It will be sent automatically.`);
    setTimeout(flushOutbox, 5000);
    return;
  }
  writeOutbox(readOutbox().filter((e) => e.client_id !== entry.client_id));
  if (form) {
    form.querySelector("textarea[name=body]").readOnly = false;
    setStatus(form, `Not sent: ${error.message}`);
  } else {
    banner(`A reply you wrote earlier could not be sent: ${error.message}`);
  }
}

function send(entry) {
  if (!socket.connected || entry.sending) return;
  entry.sending = true;
  socket.timeout(15000).emit("post", {
    thread_id: entry.thread_id, body: entry.body, client_id: entry.client_id, parent_id: entry.parent_id,
  }, (err, ack) => {
    entry.sending = false;
    if (err) return; // no answer: it stays in the outbox and goes again after reconnecting
    if (ack.ok) confirmed(entry, ack.post);
    else refused(entry, ack.error);
  });
}

const outboxEntries = new Map();

export function flushOutbox() {
  for (const item of readOutbox()) {
    const entry = outboxEntries.get(item.client_id) || item;
    outboxEntries.set(item.client_id, entry);
    send(entry);
  }
}

/**
 * Send the composers of thread `thread` over the socket. `state.revoked` (live.js's) stops it
 * once access ended (the ordinary form is then used); `posted(post)` shows a confirmed post.
 */
export function initOutbox(thread, state, posted) {
  threadId = thread;
  viewer = state;
  onPosted = posted;
  if (!threadId) return;
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form[data-composer]");
    if (!form || viewer.revoked) return;
    const files = form.querySelector("input[type=file]");
    // attachments go with the form (composer_files.js), which also holds back a post with a refused file
    if (files && (files.files.length || form.querySelector(".file-list .refused"))) return;
    const textarea = form.querySelector("textarea[name=body]");
    const cid = form.querySelector("[data-client-id]");
    const m = /\/posts\/(\d+)\/reply/.exec(form.getAttribute("action") || "");
    const parentId = Number(form.dataset.parentId) || (m ? Number(m[1]) : null);
    if (!textarea || !cid || !textarea.value.trim()) return;
    ev.preventDefault();
    const entry = {
      client_id: cid.value, thread_id: threadId, parent_id: parentId, body: textarea.value,
      draft_key: form.dataset.draftKey || "",
    };
    saveDraft(entry.draft_key, entry.body, entry.client_id);
    const items = readOutbox().filter((e) => e.client_id !== entry.client_id);
    items.push(entry);
    writeOutbox(items);
    outboxEntries.set(entry.client_id, entry);
    textarea.readOnly = true;
    if (socket.connected) {
      setStatus(form, "Sending…");
      send(entry);
    } else {
      setStatus(form, "You are offline: your reply is kept and will be sent when reconnected.");
    }
  }, true);

  // Restore a reply that was waiting to be sent when the page was left or reloaded.
  for (const item of readOutbox()) {
    const form = formFor(item.client_id);
    if (form) {
      form.querySelector("textarea[name=body]").readOnly = true;
      setStatus(form, "Waiting for the connection: this reply will be sent when reconnected.");
    }
  }
}

/** The connection dropped: nothing is being sent any more; unless the server ended it, say the replies wait. */
export function outboxDisconnected(byServer) {
  for (const entry of outboxEntries.values()) entry.sending = false;
  if (byServer) return;
  for (const item of readOutbox()) setStatus(formFor(item.client_id), "You are offline: your reply is kept and will be sent when reconnected.");
}
