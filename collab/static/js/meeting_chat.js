// The meeting chat: the log (role="log" on the wrapper, a list of messages inside), the form, the
// count of messages that arrived while the Chat tab was not open, and a word to screen readers then.
import { announce } from "./live_regions.js";
import { clockTime } from "./dates.js";
import { byId as $, el } from "./dom.js";
import { ctx, isMe, send } from "./meeting_hybrid.js";
import { selectedTab, setCount } from "./meeting_layout.js";
import { socket } from "./socket.js";

let shown = null;   // messages in the list
let unread = 0;

export function renderChat() {
  const chat = ctx.snap.chat;
  const list = $("chat-list");
  if (shown !== null && chat.length === shown && list.childElementCount === shown) return;
  const fresh = shown === null ? [] : chat.slice(shown).filter((c) => !isMe(c));
  list.replaceChildren(...chat.map((c) => el("li", {},
    el("span", { class: "chat-name", text: c.name }), el("span", { class: "hint", text: ` ${clockTime(c.at)} ` }),
    el("span", { class: "chat-body", text: c.body }))));
  shown = chat.length;
  const log = $("chat-log");
  log.scrollTop = log.scrollHeight;
  if (fresh.length && selectedTab() !== "chat") {
    unread += fresh.length;
    setCount("chat", unread, unread === 1 ? "new message" : "new messages");
    announce(`New chat message from ${fresh[fresh.length - 1].name}.`);
  }
}

export function initChat() {
  socket.on("meeting.chat", (m) => {
    const snap = ctx.snap;
    if (m.meeting_id !== ctx.meetingId || !snap) return;
    if (!snap.chat.some((c) => c.id === m.message.id)) snap.chat.push(m.message);
    renderChat();
  });
  document.addEventListener("meeting:tab", (e) => {
    if (e.detail !== "chat") return;
    unread = 0;
    setCount("chat", 0);
    const log = $("chat-log");
    log.scrollTop = log.scrollHeight;
  });
  $("chat-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("chat-text");
    if (!input.value.trim()) return;
    if (await send("meeting_chat", { body: input.value })) input.value = "";
  });
}
