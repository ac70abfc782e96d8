// The Chair tab: who presents the slides, "Mute everyone", the lock, the actions for the minutes,
// this laptop as the meeting room, and "End meeting and post minutes". (Per-person tools are in People.)
import { byId as $, el } from "./dom.js";
import { ctx, personKey, send } from "./meeting_hybrid.js";

export function renderChair() {
  const snap = ctx.snap;
  const lock = $("lock-button");
  if (!lock) return;
  lock.setAttribute("aria-pressed", String(snap.locked));
  lock.textContent = snap.locked ? "Unlock meeting" : "Lock meeting";
  const sel = $("presenter-select");
  if (sel && document.activeElement !== sel) {
    const people = new Map();
    for (const r of snap.attendance.remote) if (personKey(r) && r.present && !r.removed) people.set(personKey(r), r.name);
    const presenter = snap.presenter ? personKey({ user_id: snap.presenter.id, number: snap.presenter.number }) : null;
    if (presenter) people.set(presenter, snap.presenter.name);
    sel.replaceChildren(el("option", { value: "", text: "The chairs" }),
      ...[...people].map(([key, name]) => el("option", { value: key, text: name })));
    sel.value = presenter || "";
  }
  $("action-list").replaceChildren(...snap.actions.map((a) => el("li", { text: a.text + (a.owner ? ` (${a.owner})` : "") })));
}

/** `join`: registers this laptop as the meeting room (meeting_room.js keeps it through reconnections). */
export function initChair(join) {
  $("mute-all")?.addEventListener("click", async () => {
    if (await send("meeting_mute_all")) {
      $("mute-notice").textContent = "Everyone else's microphone is muted. They can unmute when they want to speak.";
      $("mute-notice").hidden = false;
    }
  });
  $("lock-button")?.addEventListener("click", () => send("meeting_lock", { locked: !ctx.snap?.locked }));
  $("action-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await send("meeting_action", { text: $("action-text").value, owner: $("action-owner").value })) {
      $("action-text").value = "";
      $("action-owner").value = "";
    }
  });
  $("device-join")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    ctx.device = { head_count: Number($("device-heads").value) || 0 };
    if (await join()) {
      $("mute-notice").textContent = `This laptop is registered as “Meeting room” with ${ctx.device.head_count} people.`;
      $("mute-notice").hidden = false;
    }
  });
}
