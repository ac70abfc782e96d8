// Progressive enhancement for server-rendered pages. Every page works without it.
import { initComposers } from "./composer.js";
import { initConfirmDialogs } from "./confirm_dialog.js";
import { announce } from "./live_regions.js";
import { initPeoplePickers } from "./people_picker.js";
import { initPostMenus } from "./post_menu.js";
import { initThreadNav } from "./thread_nav.js";
import { initMenus } from "./watch_menu.js";

function initConfirm() {
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest("form[data-confirm]");
    if (form && !window.confirm(form.dataset.confirm)) ev.preventDefault();
  });
}

function initInlineReply() {
  const tpl = document.getElementById("reply-template");
  if (!tpl) return;
  document.addEventListener("click", (ev) => {
    const link = ev.target.closest("[data-reply-to]");
    if (!link) return;
    ev.preventDefault();
    const postId = link.dataset.replyTo;
    const slot = document.querySelector(`[data-reply-slot="${postId}"]`);
    if (!slot) return;
    if (slot.firstElementChild) { slot.querySelector("textarea")?.focus(); return; }
    const frag = tpl.content.cloneNode(true);
    const form = frag.querySelector("form");
    form.action = link.getAttribute("href");
    form.dataset.draftKey = `reply-${postId}`;
    form.dataset.parentId = postId;
    // unique ids per open composer
    for (const el of form.querySelectorAll("[id]")) el.id = `${el.id}-${postId}`;
    for (const el of form.querySelectorAll("label[for]")) el.htmlFor = `${el.htmlFor}-${postId}`;
    for (const el of form.querySelectorAll("[aria-describedby]")) {
      el.setAttribute("aria-describedby", el.getAttribute("aria-describedby").split(" ").map((x) => `${x}-${postId}`).join(" "));
    }
    // Name the field after the post it answers ("Your reply to Margaret Ellis"),
    // and tell assistive technology the Reply control has opened it.
    const bodyLabel = form.querySelector(`label[for="${form.querySelector("textarea").id}"]`);
    const replyName = link.getAttribute("aria-label");
    if (bodyLabel && replyName) bodyLabel.textContent = replyName.replace(/^Reply/, "Your reply");
    const cancel = form.querySelector("[data-cancel-reply]");
    const close = () => { slot.replaceChildren(); link.setAttribute("aria-expanded", "false"); link.focus(); };
    cancel?.addEventListener("click", close);
    form.addEventListener("keydown", (e) => { if (e.key === "Escape") close(); });
    link.setAttribute("aria-expanded", "true");
    // However the composer goes (Cancel, Escape, or sent by live.js), Reply says it is closed.
    new MutationObserver((_, watch) => {
      if (slot.firstElementChild) return;
      link.setAttribute("aria-expanded", "false");
      watch.disconnect();
    }).observe(slot, { childList: true });
    slot.appendChild(frag);
    initComposers(slot);
    slot.querySelector("textarea").focus();
  });
}

// A refused form: move focus to the error summary so keyboard and screen-reader
// users meet the problem first; its links move focus to the field concerned.
function initErrorSummary() {
  const summary = document.querySelector(".error-summary");
  if (!summary) return;
  summary.focus();
  summary.addEventListener("click", (ev) => {
    const link = ev.target.closest("a[href^='#']");
    const field = link && document.getElementById(decodeURIComponent(link.hash.slice(1)));
    if (!field) return;
    ev.preventDefault();
    field.focus();
  });
}

// "Copy link" beside a read-only link field (an invitation's): shown only where the clipboard can be
// written; the field itself stays selectable for copying by hand.
function initCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    const field = document.getElementById(button.dataset.copy);
    if (!field || !navigator.clipboard) continue;
    button.hidden = false;
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(field.value);
        announce("Link copied.");
        button.textContent = "Copied";
      } catch {
        field.select();
        announce("Could not copy: the link is selected, copy it with Ctrl+C.");
      }
    });
  }
}

// Arriving at a post's address (a permalink, or the page after sending a reply)
// puts focus on that post, so Tab continues from it and it is announced.
function focusLinkedPost() {
  const m = /^#post-(\d+)$/.exec(location.hash);
  const el = m && document.getElementById(`post-${m[1]}`);
  if (el && !document.querySelector(".error-summary")) el.focus({ preventScroll: true });
}

function showFirstUnread() {
  const id = document.body.dataset.firstUnread;
  if (!id || location.hash) return;
  const el = document.getElementById(`post-${id}`);
  if (el && el !== document.querySelector(".opening .post")) {
    el.classList.add("highlight");
    el.scrollIntoView({ block: "start" });
  }
}

initConfirm();
initConfirmDialogs();
initMenus();
initCopyButtons();
initInlineReply();
initComposers(document);
initPeoplePickers(document);
initPostMenus();
initThreadNav();
showFirstUnread();
initErrorSummary();
focusLinkedPost();
window.addEventListener("hashchange", focusLinkedPost); // "Jump to first unread post" and other in-page links
