// The "…" menu of a post (issue 14): Reply stays a button of its own; everything else one can do with a post
// (react, edit, earlier versions, report, moderate, remove) sits behind one menu button, so a long thread is
// not hundreds of buttons. The page writes one link per post, to the post's actions page (the same entries,
// for browsers without JavaScript) with the entries in data-actions (rooms/thread_page.py PostView.actions);
// this module makes it a WAI-ARIA menu button and builds the one menu shown when it is opened.
import { csrfInput } from "./csrf.js";
import { el } from "./dom.js";
import { canReact, openReactionMenu } from "./reactions.js";

const ENTRIES = {
  edit: { label: "Edit", href: (id) => `/posts/${id}/edit` },
  history: { label: "Earlier versions", href: (id) => `/posts/${id}/history` },
  flag: { label: "Report to the moderators", href: (id) => `/posts/${id}/flag` },
  moderate: { label: "Moderate", href: (id) => `/posts/${id}/moderate` },
  delete: { label: "Remove", run: removePost },
};

let openMenu = null; // {button, menu}

function removePost(id) {
  if (!window.confirm("Remove this post? Replies to it stay.")) return;
  const form = el("form", { method: "post", action: `/posts/${id}/delete`, hidden: true }, csrfInput());
  document.body.append(form);
  form.submit();
}

/** Make the page's "…" links (and those of posts added live) menu buttons. */
export function enhanceMenuButtons(root = document) {
  for (const a of root.querySelectorAll("a.post-menu:not([role])")) {
    a.setAttribute("role", "button");
    a.setAttribute("aria-haspopup", "menu");
    a.setAttribute("aria-expanded", "false");
  }
}

function close(focusButton) {
  if (!openMenu) return;
  const { button, menu } = openMenu;
  openMenu = null;
  menu.remove();
  button.setAttribute("aria-expanded", "false");
  button.removeAttribute("aria-controls");
  if (focusButton) button.focus();
}

function items(menu) {
  return [...menu.querySelectorAll("[role=menuitem]")];
}

function open(button, focusLast = false) {
  close(false);
  const article = button.closest("article.post");
  const id = Number(article.dataset.postId);
  const names = (button.dataset.actions || "").split(/\s+/).filter((n) => ENTRIES[n]);
  const menu = el("ul", { class: "post-menu-list", role: "menu", id: `post-menu-${id}`, "aria-label": button.getAttribute("aria-label").replace(/^More actions: /, "Actions: ") });
  const entry = (label, attrs, run) => el("li", { role: "none" },
    el(attrs.href ? "a" : "button", { role: "menuitem", tabindex: "-1", type: attrs.href ? null : "button", ...attrs, text: label,
      onclick: run ? (ev) => { ev.preventDefault(); close(false); run(id, button); } : null }));
  if (canReact() && !article.classList.contains("deleted")) menu.append(entry("Add reaction", {}, (pid) => openReactionMenu(pid, button)));
  for (const n of names) {
    const e = ENTRIES[n];
    menu.append(e.href ? entry(e.label, { href: e.href(id) }) : entry(e.label, { class: n === "delete" ? "danger" : null }, e.run));
  }
  if (!menu.children.length) menu.append(entry("Open the post's page", { href: button.getAttribute("href") }));
  button.after(menu);
  button.setAttribute("aria-expanded", "true");
  button.setAttribute("aria-controls", menu.id);
  openMenu = { button, menu };
  const list = items(menu);
  (focusLast ? list[list.length - 1] : list[0]).focus();
}

export function initPostMenus() {
  enhanceMenuButtons();
  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("a.post-menu[role=button]");
    if (button) {
      ev.preventDefault();
      if (openMenu && openMenu.button === button) close(true);
      else open(button);
      return;
    }
    if (openMenu && !openMenu.menu.contains(ev.target)) close(false);
  });
  document.addEventListener("keydown", (ev) => {
    const button = ev.target.closest?.("a.post-menu[role=button]");
    if (button && [" ", "ArrowDown", "ArrowUp"].includes(ev.key)) {
      ev.preventDefault();
      open(button, ev.key === "ArrowUp");
      return;
    }
    if (!openMenu || !openMenu.menu.contains(ev.target)) return;
    const list = items(openMenu.menu);
    const i = list.indexOf(ev.target);
    const to = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: list.length - 1 }[ev.key];
    if (to !== undefined) {
      ev.preventDefault();
      list[(to + list.length) % list.length].focus();
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopPropagation();
      close(true);
    } else if (ev.key === "Tab") {
      close(false);
    } else if (ev.key === " " && ev.target.tagName === "A") {
      ev.preventDefault();
      ev.target.click();
    } else if (ev.key.length === 1 && /\S/.test(ev.key)) {
      // type-ahead: the next entry starting with that letter
      const next = [...list.slice(i + 1), ...list.slice(0, i + 1)].find((x) => x.textContent.toLowerCase().startsWith(ev.key.toLowerCase()));
      next?.focus();
    }
  });
  document.addEventListener("focusout", (ev) => {
    if (openMenu && openMenu.menu.contains(ev.target) && ev.relatedTarget && !openMenu.menu.contains(ev.relatedTarget)
        && ev.relatedTarget !== openMenu.button) close(false);
  });
}
