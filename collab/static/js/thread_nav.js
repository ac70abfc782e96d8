// Long threads by keyboard (issue 14). Tabbing through a 67-post thread took 231 presses to reach the reply
// box; now:
// - a second skip link, "Skip to the reply box" (rooms/thread.html), puts the cursor in it;
// - while focus is on a post (or anything inside one), J and K move to the next and previous post, N to the
//   next unread one, R replies to the post, Shift+R goes to the reply box. They are single keys, so (WCAG
//   2.1.4) they only act while a post has focus, never while typing, and never with Ctrl, Alt or Meta.
import { announce } from "./live_regions.js";

function posts() {
  // posts hidden in a closed "Show more replies" are skipped
  return [...document.querySelectorAll("article.post")].filter((a) => !a.closest("details:not([open])"));
}

function goTo(article) {
  article.focus({ preventScroll: true });
  article.scrollIntoView({ block: "start", behavior: "instant" });
}

function replyBox() {
  return document.getElementById("reply-body");
}

export function focusReplyBox() {
  const box = replyBox();
  if (!box) return false;
  box.closest("[role=tabpanel][hidden]") && document.getElementById(`${box.id}-tab-write`)?.click();
  box.focus({ preventScroll: true });
  box.scrollIntoView({ block: "center", behavior: "instant" });
  return true;
}

export function initThreadNav() {
  if (!document.body.dataset.threadId) return;
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest('a[href="#reply-body"]');
    if (link && focusReplyBox()) ev.preventDefault();
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.defaultPrevented) return;
    const current = ev.target.closest?.("article.post");
    if (!current || ev.target.closest("input, textarea, select, [contenteditable], [role=menu], form")) return;
    const key = ev.key.toLowerCase();
    if (!["j", "k", "n", "r"].includes(key)) return;
    const all = posts();
    const i = all.indexOf(current);
    ev.preventDefault();
    if (key === "j" || key === "k") {
      const next = all[i + (key === "j" ? 1 : -1)];
      if (next) goTo(next);
      else announce(key === "j" ? "This is the last post on this page." : "This is the first post on this page.");
    } else if (key === "n") {
      const next = all.slice(i + 1).find((a) => a.hasAttribute("data-unread"));
      if (next) goTo(next);
      else announce("No more unread posts on this page.");
    } else if (ev.shiftKey) {
      if (!focusReplyBox()) announce("You cannot reply in this thread.");
    } else {
      const reply = current.querySelector(":scope > .post-actions [data-reply-to]");
      if (reply) reply.click();
      else announce("You cannot reply to this post.");
    }
  });
}
