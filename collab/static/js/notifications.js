// Notifications in the page: the bell's unread count follows the live
// connection, the notifications page shows new ones as they come, and composers
// suggest room members after "@" (a list you can use with the arrow keys).
import { csrfToken } from "./csrf.js";
import { el } from "./dom.js";

function bell(unread) {
  const count = document.querySelector("[data-bell-count]");
  if (!count) return;
  count.firstChild.textContent = String(unread);
  count.hidden = !unread;
  document.querySelector("[data-bell]")?.setAttribute("aria-label", unread ? `Notifications, ${unread} unread` : "Notifications");
}

function prependToPage(n) {
  let list = document.getElementById("notification-list");
  if (!list) {
    const empty = document.getElementById("notification-list-empty");
    if (!empty) return;
    list = el("ol", { class: "notifications", id: "notification-list" });
    empty.replaceWith(list);
  }
  if (list.querySelector(`[data-notification-id="${n.id}"]`)) return;
  const li = el("li", { class: "notification is-unread", dataset: { notificationId: String(n.id) } },
    el("a", { class: "notification-link", href: `/notifications/${n.id}`, text: n.headline }), " ",
    el("span", { class: "badge", text: "New" }),
    el("p", { class: "hint", text: `${n.kind === "thread" ? `“${n.thread.title}”` : n.room.name} · just now` }));
  if (n.excerpt) li.append(el("p", { class: "notification-excerpt", text: n.excerpt }));
  list.prepend(li);
}

// -- @mention suggestions --------------------------------------------------------------------------

const MENTION_BEFORE_CARET = /(?:^|[^\w@])@([^\s@][^@\n]{0,40})?$/u;

function initMentions(roomId) {
  if (!roomId) return;
  let box = null;
  let target = null;
  let people = [];
  let active = -1;
  let start = -1;
  let seq = 0;

  function close() {
    if (!box) return;
    box.remove();
    box = null;
    target?.removeAttribute("aria-activedescendant");
    target?.removeAttribute("aria-controls");
    active = -1;
  }

  function highlight(i) {
    active = i;
    for (const [j, li] of [...box.children].entries()) li.setAttribute("aria-selected", String(j === i));
    if (i >= 0) target.setAttribute("aria-activedescendant", box.children[i].id);
  }

  function choose(i) {
    const p = people[i];
    if (!p || !target) return;
    const caret = target.selectionStart;
    const text = target.value;
    target.value = `${text.slice(0, start)}@${p.name} ${text.slice(caret)}`;
    const pos = start + p.name.length + 2;
    target.setSelectionRange(pos, pos);
    target.dispatchEvent(new Event("input", { bubbles: true }));
    close();
    target.focus();
  }

  function open(textarea, list) {
    close();
    if (!list.length) return;
    target = textarea;
    people = list;
    const id = `${textarea.id || "composer"}-mentions`;
    box = el("ul", { class: "mention-list", id, role: "listbox", "aria-label": "People in this room" },
      ...list.map((p, i) => el("li", { id: `${id}-${i}`, role: "option", text: p.name + (p.job_title ? ` · ${p.job_title}` : ""),
                                       onmousedown: (e) => { e.preventDefault(); choose(i); } })));
    textarea.setAttribute("aria-controls", box.id);
    textarea.after(box);
    highlight(0);
  }

  document.addEventListener("input", async (ev) => {
    const textarea = ev.target.closest?.("form[data-composer] textarea");
    if (!textarea) return;
    textarea.setAttribute("aria-autocomplete", "list");
    const before = textarea.value.slice(0, textarea.selectionStart);
    const m = MENTION_BEFORE_CARET.exec(before);
    if (!m) { close(); return; }
    start = before.lastIndexOf("@");
    const q = (m[1] || "").trim();
    const mine = ++seq;
    try {
      const thread = document.body.dataset.threadId ? `&thread_id=${document.body.dataset.threadId}` : "";
      const resp = await fetch(`/rooms/${roomId}/mentions.json?q=${encodeURIComponent(q)}${thread}`, { headers: { Accept: "application/json" } });
      if (!resp.ok || mine !== seq) return;
      open(textarea, (await resp.json()).people);
    } catch { close(); }
  });

  document.addEventListener("keydown", (ev) => {
    if (!box || ev.target !== target) return;
    if (ev.key === "ArrowDown") { ev.preventDefault(); highlight((active + 1) % people.length); }
    else if (ev.key === "ArrowUp") { ev.preventDefault(); highlight((active - 1 + people.length) % people.length); }
    else if ((ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey) || ev.key === "Tab") {
      if (active >= 0) { ev.preventDefault(); choose(active); }
    } else if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); close(); }
  }, true);

  document.addEventListener("focusout", (ev) => { if (ev.target === target) setTimeout(close, 150); });
}

// A notification about a post in the thread this page shows, while the page is in view: the post is
// being read (live.js shows it), so the notification is read too and the bell does not count it.
async function readHere(n) {
  if (Number(document.body.dataset.threadId) !== n.thread.id || document.visibilityState !== "visible") return false;
  const form = new FormData();
  form.append("action", "read");
  form.append("id", String(n.id));
  form.append("csrf_token", csrfToken());
  try {
    const resp = await fetch("/notifications", { method: "POST", body: form, headers: { Accept: "application/json" } });
    if (!resp.ok) return false;
    bell((await resp.json()).unread);
    return true;
  } catch { return false; }
}

export function initNotifications(socket, { roomId, announce }) {
  socket.on("notification.created", async (data) => {
    bell(data.unread);
    prependToPage(data.notification);
    if (await readHere(data.notification)) return;
    announce(`New notification: ${data.notification.headline}.`);
  });
  socket.on("notification.read", (data) => bell(data.unread));
  initMentions(roomId);
}
