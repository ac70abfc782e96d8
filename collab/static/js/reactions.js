// Reactions on posts: the bar under each post (counts, yours pressed) and the choice of reactions opened
// from the post's "…" menu (post_menu.js), loaded once per thread page and kept current by live.js from reaction.* events.
import { csrfToken } from "./csrf.js";
import { el } from "./dom.js";
import { announce } from "./live_regions.js";

const reactionState = new Map();
let emojiChoices = [];
let viewer = { me: null, canPost: false }; // live.js's: who is looking, and whether they may react

export function renderReactions(article, list) {
  article.querySelector(":scope > .reactions")?.remove();
  const postId = Number(article.dataset.postId);
  if (article.classList.contains("deleted")) return;
  const bar = el("div", { class: "reactions", role: "group", "aria-label": "Reactions" });
  for (const r of list) {
    const mine = viewer.me && r.user_ids.includes(viewer.me.id);
    bar.append(el("button", {
      type: "button", class: `small reaction${mine ? " mine" : ""}`, "aria-pressed": mine ? "true" : "false",
      "data-react": r.emoji, "data-post": String(postId), disabled: !viewer.canPost || null,
      "aria-label": `${r.label}: ${r.count} ${r.count === 1 ? "person" : "people"}${mine ? ", including you" : ""}`,
    }, el("span", { "aria-hidden": "true", text: `${r.emoji} ${r.count}` })));
  }
  if (!list.length) return;
  const actions = article.querySelector(":scope > .post-actions");
  (actions || article.querySelector(":scope > .reply-slot"))?.before(bar);
}

/** Whether the person looking may add reactions (the "Add reaction" entry of a post's "…" menu, post_menu.js). */
export function canReact() {
  return !!(viewer.canPost && emojiChoices.length);
}

/** The choice of reactions for a post, opened from its "…" menu; Escape (or a choice) closes it and gives
 *  focus back to `returnTo`, the menu button. */
export function openReactionMenu(postId, returnTo) {
  const article = document.getElementById(`post-${postId}`);
  if (!article || !canReact()) return;
  document.getElementById(`react-menu-${postId}`)?.remove();
  const menu = el("div", { id: `react-menu-${postId}`, class: "reaction-menu", role: "group", "aria-label": "Choose a reaction" });
  for (const c of emojiChoices) {
    menu.append(el("button", { type: "button", class: "small", "data-react": c.emoji, "data-post": String(postId), "aria-label": c.label },
      el("span", { "aria-hidden": "true", text: c.emoji })));
  }
  menu.append(el("button", { type: "button", class: "small", text: "Close", onclick: () => { menu.remove(); returnTo?.focus(); } }));
  menu.returnTo = returnTo;
  const actions = article.querySelector(":scope > .post-actions");
  (actions ? actions.after(menu) : article.querySelector(":scope > .reply-slot")?.before(menu));
  menu.querySelector("button").focus();
}

export function setReactions(postId, list) {
  reactionState.set(postId, list);
  const article = document.getElementById(`post-${postId}`);
  if (article) renderReactions(article, list);
}

async function loadReactions(threadId) {
  try {
    const resp = await fetch(`/threads/${threadId}/reactions.json`, { headers: { Accept: "application/json" } });
    if (!resp.ok) return;
    const data = await resp.json();
    emojiChoices = data.emoji;
    if (data.me && !viewer.me) viewer.me = data.me;
    for (const article of document.querySelectorAll("article.post[data-post-id]")) {
      const id = Number(article.dataset.postId);
      setReactions(id, data.reactions[String(id)] || []);
    }
  } catch { /* reactions are an extra; the page works without them */ }
}

function initReactionClicks() {
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("[data-react]");
    if (!btn) return;
    const postId = Number(btn.dataset.post);
    const list = reactionState.get(postId) || [];
    const current = list.find((r) => r.emoji === btn.dataset.react);
    const on = !(current && viewer.me && current.user_ids.includes(viewer.me.id));
    const picker = btn.closest(".reaction-menu");
    picker?.remove();
    const form = new FormData();
    form.append("emoji", btn.dataset.react);
    form.append("on", on ? "1" : "0");
    const resp = await fetch(`/posts/${postId}/reactions`, {
      method: "POST", body: form, headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    if (resp.ok) {
      setReactions(postId, (await resp.json()).reactions);
      const shown = document.querySelector(`#post-${postId} [data-react="${CSS.escape(btn.dataset.react)}"].reaction`);
      (shown || picker?.returnTo)?.focus();
    } else {
      announce("Your reaction could not be saved.");
    }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    const menu = ev.target.closest(".reaction-menu");
    if (!menu) return;
    menu.remove();
    menu.returnTo?.focus();
  });
}

/** The reactions last known for a post (for redrawing it). */
export function reactionsOf(postId) {
  return reactionState.get(postId) || [];
}

/** Draw every known post's reactions again (after `viewer` changed: subscribed, role known). */
export function redrawReactions() {
  for (const [id, list] of reactionState) setReactions(id, list);
}

/**
 * Start reactions on a page. `state` is live.js's object about the person looking ({me, canPost},
 * updated in place when the socket says who they are); `threadId` is the thread shown, if any.
 */
export function initReactions(state, threadId) {
  viewer = state;
  initReactionClicks();
  if (threadId) loadReactions(threadId);
}
