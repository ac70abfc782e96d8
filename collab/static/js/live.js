// Live rooms, over the page's one Socket.IO connection (socket.js). Room and thread pages show new
// threads, posts, edits, removals, reactions (reactions.js) and membership changes without a
// reload; the composer sends over the socket, keeps what you wrote while offline and sends it
// when the connection returns (outbox.js). Every page works without this script (forms post as usual).
import { dateTime } from "./dates.js";
import { el } from "./dom.js";
import { activity, announce, banner, connectionNote, region } from "./live_regions.js";
import { initNotifications } from "./notifications.js";
import { flushOutbox, initOutbox, outboxDisconnected } from "./outbox.js";
import { initReactions, reactionsOf, redrawReactions, renderReactions, setReactions } from "./reactions.js";
import { socket } from "./socket.js";

const body = document.body;
const roomId = Number(body.dataset.roomId) || null;
const threadId = Number(body.dataset.threadId) || null;
const IDLE_MS = 5 * 60 * 1000;
const TYPING_EVERY_MS = 3000;
const TYPING_SHOWN_MS = 6000;

let lastSeq = Number(body.dataset.roomSeq) || 0;
// The person looking: filled in when the socket subscribes; shared with reactions.js and outbox.js.
const viewer = {
  me: null,
  canPost: !!document.querySelector("[data-reply-to]") || !!document.querySelector("form[data-composer]"),
  canModerate: false,
  revoked: false,
};
let syncing = false;
let resyncWanted = false;

// -- building posts --------------------------------------------------------------------------------

function postActions(post) {
  // As rooms/_post.html writes them: Reply, then the "…" menu button (post_menu.js) with the entries the
  // server would give (rooms/thread_page.py PostView.actions; the server checks each action again).
  const actions = el("div", { class: "post-actions" });
  const name = post.author ? post.author.name : "Former member";
  if (viewer.canPost) {
    actions.append(el("a", {
      class: "button small", href: `/posts/${post.id}/reply`, "data-reply-to": String(post.id),
      "aria-label": `Reply to ${post.author ? post.author.name : "this post"}`, text: "Reply",
    }));
  }
  const mine = viewer.me && post.author && post.author.id === viewer.me.id;
  const names = [mine ? "edit" : null, post.edited_at ? "history" : null, !mine && viewer.canPost ? "flag" : null,
    viewer.canModerate ? "moderate" : null, mine || viewer.canModerate ? "delete" : null].filter(Boolean);
  if (names.length || viewer.canPost) {
    actions.append(el("a", {
      class: "button small post-menu", href: `/posts/${post.id}/actions`, "data-actions": names.join(" "),
      "aria-label": `More actions: post by ${name}`, role: "button", "aria-haspopup": "menu", "aria-expanded": "false", text: "…",
    }));
  }
  return actions;
}

function attachmentList(post) {
  if (!post.attachments || !post.attachments.length) return null;
  const ul = el("ul", { class: "attachments", "aria-label": "Attachments" });
  for (const a of post.attachments) {
    const li = el("li");
    if (a.is_image && a.thumbnail_url) {
      li.append(el("a", { href: a.url }, el("img", { src: a.thumbnail_url, alt: `Image: ${a.filename}`, class: "thumb" })));
    }
    li.append(el("a", { href: a.url, download: true, text: a.filename }), " ",
      el("span", { class: "hint", text: `(${(a.size / 1024).toFixed(1)} KB)` }));
    ul.append(li);
  }
  return ul;
}

function buildPost(post) {
  const article = el("article", {
    class: `post${post.deleted ? " deleted" : ""}`, id: `post-${post.id}`, "data-post-id": String(post.id),
    "aria-labelledby": `post-${post.id}-by`, tabindex: "-1",
  });
  const head = el("header", { class: "post-head" },
    el("span", { id: `post-${post.id}-by`, class: "author", text: post.deleted ? "Post removed" : (post.author ? post.author.name : "Former member") }),
    el("a", { class: "permalink", href: `/posts/${post.id}` }, el("time", { datetime: post.created_at, text: dateTime(post.created_at) })));
  if (post.edited_at && !post.deleted) head.append(el("a", { class: "hint", href: `/posts/${post.id}/history`, text: "edited" }));
  article.append(head);
  fillPost(article, post);
  article.append(el("div", { class: "reply-slot", "data-reply-slot": String(post.id) }));
  return article;
}

function fillPost(article, post) {
  for (const sel of [".post-body", ".attachments", ".post-actions", ".tombstone", ".reactions", ".moderation-note"]) {
    article.querySelector(`:scope > ${sel}`)?.remove();
  }
  const slot = article.querySelector(":scope > .reply-slot");
  const parts = [];
  if (post.deleted) {
    parts.push(el("p", { class: "tombstone", text: "This post was removed." }));
  } else if (post.hidden && !post.html) { // live events never carry a hidden post's text
    parts.push(el("p", { class: "tombstone hidden-post", text: "This post was hidden by moderators." }));
  } else {
    const bodyDiv = el("div", { class: "post-body" });
    bodyDiv.innerHTML = post.html; // sanitised on the server (nh3), exactly as the page renders it
    parts.push(bodyDiv, attachmentList(post), postActions(post));
  }
  for (const p of parts) if (p) (slot ? slot.before(p) : article.append(p));
  if (!post.deleted) renderReactions(article, reactionsOf(post.id));
}

function topList() {
  return document.querySelector(".thread-replies > ol.replies");
}

function placePost(post, mine = false) {
  if (document.getElementById(`post-${post.id}`)) return false;
  const flat = document.querySelector("ol.replies.flat");
  const li = el("li", { class: `reply depth-${Math.min(post.depth, 6)}` });
  const article = buildPost(post);
  li.append(article);
  if (flat) {
    if (new URLSearchParams(location.search).get("page") > "1") return false;
    if (post.depth > 1) { // newest first, a reply to a reply says which (as rooms/_post.html does)
      const parentName = document.querySelector(`#post-${post.parent_id} .author`)?.textContent || "an earlier reply";
      article.querySelector(".post-head").append(el("span", { class: "hint in-reply-to" }, "In reply to ",
        el("a", { href: `/posts/${post.parent_id}`, text: parentName })));
    }
    flat.prepend(li);
  } else {
    const opening = document.querySelector(".opening .post");
    const isRoot = opening && post.parent_id === Number(opening.dataset.postId);
    let list;
    if (isRoot || (!opening && post.depth === 1)) {
      if (document.querySelector('.pager a[rel="next"]')) {
        announce("A new reply was added on a later page.");
        return false;
      }
      list = topList();
      document.querySelector(".thread-replies [data-empty]")?.remove();
    } else {
      const parent = document.getElementById(`post-${post.parent_id}`);
      const parentLi = parent?.closest("li.reply");
      if (!parentLi) return false;
      list = parentLi.querySelector(":scope > ol.replies, :scope > details > ol.replies");
      if (!list) {
        list = el("ol", { class: "replies" });
        parentLi.append(list);
      }
    }
    if (!list) return false;
    list.append(li);
  }
  if (!mine) {
    article.classList.add("new-post");
    announce(`New reply from ${post.author ? post.author.name : "someone"}.`);
  }
  return true;
}

// -- room page ------------------------------------------------------------------------------------------

function threadCountBump() {
  const hint = document.querySelector("#threads-h .hint");
  const m = hint && /\((\d+)\)/.exec(hint.textContent);
  if (m) hint.textContent = `(${Number(m[1]) + 1})`;
}

function addThread(thread, post) {
  if (document.querySelector(`.thread-item[data-thread-id="${thread.id}"]`)) return;
  let list = document.getElementById("thread-list");
  if (!list) {
    const section = document.querySelector('[aria-labelledby="threads-h"]');
    if (!section) return;
    section.querySelector(":scope > p")?.remove();
    list = el("ol", { class: "threads", id: "thread-list" });
    section.append(list);
  }
  const mine = viewer.me && thread.author && thread.author.id === viewer.me.id;
  const li = el("li", { class: "thread-item new-thread", "data-thread-id": String(thread.id) },
    el("a", { href: `/threads/${thread.id}`, class: "thread-link", text: thread.title }), " ",
    mine ? null : el("span", { class: "unread", text: "1 new" }),
    el("p", { class: "hint", text: `Started by ${thread.author ? thread.author.name : "former member"} · 1 post · last activity ${dateTime(post.created_at)}` }));
  list.prepend(li);
  threadCountBump();
  announce(`New thread: ${thread.title}`);
}

function bumpThread(post) {
  const li = document.querySelector(`.thread-item[data-thread-id="${post.thread_id}"]`);
  if (!li) return;
  const hint = li.querySelector(".hint");
  const m = hint && /· (\d+) posts? ·/.exec(hint.textContent);
  if (m) {
    const n = Number(m[1]) + 1;
    hint.textContent = hint.textContent.replace(/· \d+ posts? · last activity .*$/, `· ${n} posts · last activity ${dateTime(post.created_at)}`);
  }
  if (!(viewer.me && post.author && post.author.id === viewer.me.id)) {
    let badge = li.querySelector(".unread");
    if (!badge) {
      badge = el("span", { class: "unread", text: "0 new" });
      li.querySelector(".thread-link").after(" ", badge);
    }
    badge.textContent = `${(parseInt(badge.textContent, 10) || 0) + 1} new`;
  }
  li.parentElement.prepend(li);
}

// -- applying room events -----------------------------------------------------------------------------

function apply(name, data) {
  switch (name) {
    case "thread.created":
      if (!threadId) addThread(data.thread, data.post);
      break;
    case "post.created":
      if (threadId === data.post.thread_id) placePost(data.post);
      else if (!threadId) bumpThread(data.post);
      break;
    case "post.updated":
    case "post.deleted": {
      const article = document.getElementById(`post-${data.post.id}`);
      if (!article) break;
      if (data.post.deleted) {
        article.classList.add("deleted");
        article.querySelector(".author").textContent = "Post removed";
        article.querySelector(".post-head a.hint")?.remove();
      } else if (data.post.edited_at && !article.querySelector(".post-head a.hint")) {
        article.querySelector(".post-head").append(el("a", { class: "hint", href: `/posts/${data.post.id}/history`, text: "edited" }));
      }
      fillPost(article, data.post);
      break;
    }
    case "reaction.added":
    case "reaction.removed":
      setReactions(data.post_id, data.reactions);
      break;
    case "member.added":
      activity(`${data.user.name} joined the room${data.role && data.role !== "member" ? ` as ${data.role}` : ""}.`);
      break;
    case "member.updated":
      activity(`${data.user.name} is now ${/^[aeiou]/.test(data.role) ? "an" : "a"} ${data.role} of this room.`);
      break;
    case "member.removed":
      if (viewer.me && data.user.id === viewer.me.id) banner("You are no longer a member of this room.");
      else activity(`${data.user.name} is no longer a member of this room.`);
      break;
    case "room.updated":
      if (data.room.archived) banner("This room has been archived: it can be read but not written to.");
      break;
    default:
      break;
  }
}

function onRoomEvent(name, data) {
  if (!roomId || !data || data.room_id !== roomId) return;
  if (data.seq <= lastSeq) return; // already shown (a duplicate, or in the page)
  if (data.seq > lastSeq + 1 || syncing) { sync(); return; } // a gap: ask for what is missing, in order
  lastSeq = data.seq;
  apply(name, data);
}

function sync() {
  if (!roomId || !socket.connected) return;
  if (syncing) { resyncWanted = true; return; }
  syncing = true;
  socket.timeout(20000).emit("sync", { room_id: roomId, after_seq: lastSeq }, (err, ack) => {
    syncing = false;
    if (err || !ack.ok) return;
    for (const item of ack.events) {
      if (item.data.seq !== lastSeq + 1) continue;
      lastSeq = item.data.seq;
      apply(item.event, item.data);
    }
    if (ack.more || resyncWanted) { resyncWanted = false; sync(); }
  });
}

const ROOM_EVENTS = ["thread.created", "post.created", "post.updated", "post.deleted", "reaction.added",
  "reaction.removed", "member.added", "member.updated", "member.removed", "room.updated", "room.created",
  // shown by ideas.js; counted here so the room's sequence has no gap
  "idea.created", "idea.status", "ideas.settings"];   // idea.voted is a live count, not numbered
for (const name of ROOM_EVENTS) socket.on(name, (data) => onRoomEvent(name, data));

// -- presence and typing ----------------------------------------------------------------------------------

function listNames(people) {
  return people.map((p) => p.user.name + (p.idle ? " (idle)" : "")).join(", ");
}

function showPresence(snap) {
  if (!roomId || snap.room_id !== roomId) return;
  const node = region("presence", "presence hint", null);
  const others = snap.online.filter((p) => !viewer.me || p.user.id !== viewer.me.id);
  const more = snap.count - snap.online.length;
  let online;
  if (others.length) online = `Online in this room: ${listNames(others)}${more > 0 ? ` and ${more} more` : ""}`;
  else if (more > 0) online = `${more} other${more === 1 ? " person is" : " people are"} online in this room`;
  else online = "No one else is online in this room";
  const viewing = threadId ? others.filter((p) => p.thread_ids.includes(threadId)) : [];
  const sentences = [online, viewing.length ? `Viewing this thread: ${listNames(viewing)}` : ""].filter(Boolean);
  // One full stop per sentence, even when a name already ends with one ("Sgt.").
  node.textContent = sentences.map((t) => `${t.replace(/\.+$/, "")}.`).join(" ");
}

const typists = new Map();

function showTyping() {
  const node = document.getElementById("typing") || (() => {
    const n = el("p", { id: "typing", class: "typing", "aria-live": "polite" });
    const anchor = document.querySelector(".thread-replies");
    (anchor || document.getElementById("main")).after(n);
    return n;
  })();
  const names = [...typists.values()].map((t) => t.name);
  node.textContent = !names.length ? "" : names.length === 1 ? `${names[0]} is typing…`
    : names.length === 2 ? `${names[0]} and ${names[1]} are typing…` : `${names.length} people are typing…`;
}

// In non-attributed rooms people carry a pseudonym and no id ("Participant 4"): key them by that name.
const personKey = (user) => (user.id !== undefined && user.id !== null ? user.id : `p:${user.name}`);

socket.on("typing", (data) => {
  if (data.thread_id !== threadId || (viewer.me && data.user.id === viewer.me.id)) return;
  const key = personKey(data.user);
  const prev = typists.get(key);
  if (prev) clearTimeout(prev.timer);
  typists.set(key, { name: data.user.name, timer: setTimeout(() => { typists.delete(key); showTyping(); }, TYPING_SHOWN_MS) });
  showTyping();
});

socket.on("presence", showPresence);

socket.on("post.created", (data) => {
  // someone who posted has stopped typing
  const key = data.post.author && personKey(data.post.author);
  const t = key !== undefined && key !== null && typists.get(key);
  if (t) { clearTimeout(t.timer); typists.delete(key); showTyping(); }
});

let lastTyping = 0;
let lastInput = Date.now();
let idle = false;

function markActive() {
  lastInput = Date.now();
  if (idle && socket.connected) {
    idle = false;
    socket.emit("activity", { idle: false });
  }
}

function initActivity() {
  for (const type of ["keydown", "pointerdown", "pointermove", "scroll", "focusin", "wheel", "touchstart"]) {
    window.addEventListener(type, markActive, { passive: true, capture: true });
  }
  setInterval(() => {
    if (!idle && Date.now() - lastInput > IDLE_MS && socket.connected) {
      idle = true;
      socket.emit("activity", { idle: true });
    }
  }, 30000);
  if (threadId) {
    document.addEventListener("input", (ev) => {
      if (!ev.target.closest("form[data-composer] textarea") || !socket.connected || !viewer.canPost) return;
      const now = Date.now();
      if (now - lastTyping > TYPING_EVERY_MS) {
        lastTyping = now;
        socket.emit("typing", { thread_id: threadId });
      }
    });
  }
}

// -- connection lifecycle ---------------------------------------------------------------------------------

function subscribe() {
  if (!roomId || viewer.revoked) return;
  socket.emit("subscribe", { room_id: roomId }, (ack) => {
    if (!ack.ok) {
      if (ack.error.code === "not_found") { viewer.revoked = true; banner("You no longer have access to this room."); }
      return;
    }
    viewer.me = ack.me;
    viewer.canPost = ack.can_post;
    viewer.canModerate = ack.can_moderate;
    showPresence(ack.presence);
    if (ack.seq > lastSeq) sync();
    if (threadId) socket.emit("subscribe_thread", { thread_id: threadId });
    if (idle) socket.emit("activity", { idle: true });
    redrawReactions();
  });
}

socket.on("connect", () => {
  connectionNote("");
  document.documentElement.dataset.live = "on";
  subscribe();
  flushOutbox();
});

socket.on("disconnect", (reason) => {
  document.documentElement.dataset.live = "off";
  if (reason === "io server disconnect") { outboxDisconnected(true); return; } // ended by the server: see session.ended
  connectionNote("Connection lost: reconnecting… Anything you post is kept and sent when reconnected.");
  outboxDisconnected(false);
});

socket.on("connect_error", (err) => {
  document.documentElement.dataset.live = "off";
  connectionNote("Live updates are not connected: reconnecting… Anything you post is kept and sent when reconnected.");
  // Refused because the server's message queue is down (issue 17): the client does not retry a refusal by
  // itself, so try again a little later.
  if (!socket.active && err?.data?.code === "unavailable") setTimeout(() => socket.connect(), 3000);
});

// The server's message queue was down: events from other server processes may be missing. Ask for them.
socket.on("live.resync", (data) => {
  if (roomId && (data?.room_ids || []).includes(roomId)) sync();
});

socket.on("access.revoked", (data) => {
  if (data.room_id !== roomId) return;
  viewer.revoked = true;
  banner(data.message);
  for (const ta of document.querySelectorAll("form[data-composer] textarea")) ta.readOnly = true;
});

socket.on("session.ended", (data) => {
  viewer.revoked = true;
  banner(`${data.message} Reload the page to sign in again.`);
});

socket.on("error", (data) => {
  if (data && data.message) console.warn("Collab live:", data.event, data.code, data.message);
});

initOutbox(threadId, viewer, (post) => {
  placePost(post, true);
  document.getElementById(`post-${post.id}`)?.focus({ preventScroll: false });
});
initActivity();
initReactions(viewer, threadId);
initNotifications(socket, { roomId, announce });
