// People: everyone in the meeting, in the room or remote, with their microphone, camera, hand and
// "has the floor" state, and for the chair each person's actions (give the floor, lower the hand,
// mute, make presenter, remove). "Mute" asks that person's page to mute its microphone; only they
// can unmute it (meeting_hands.js mutes the page). Also the register the chair keeps (who is ticked in the room), the
// people who left, and the raised hands on the video tiles.
import { clockTime } from "./dates.js";
import { byId as $, el } from "./dom.js";
import { state as call } from "./meeting_call.js";
import { handActions } from "./meeting_hands.js";
import { ctx, inCall, isMe, personKey, personRef, send, setText } from "./meeting_hybrid.js";
import { setCount } from "./meeting_layout.js";

const boxKey = (box) => (box.dataset.userId ? `u${box.dataset.userId}` : `p${box.dataset.participant}`);

/** The call's view of a person (microphone, camera) when this page is in the call. */
function media(p) {
  if (!inCall()) return null;
  if (isMe(p)) return { audio: !call.muted, video: !call.cameraOff };
  if (p.user_id && call.people.has(p.user_id)) return call.people.get(p.user_id);
  return [...call.people.values()].find((m) => m.name === p.name) || null;
}

function handOf(p) {
  const key = personKey(p);
  const i = ctx.snap.hands.findIndex((h) => (key && personKey(h) === key) || (!key && h.name === p.name));
  return i < 0 ? null : { hand: ctx.snap.hands[i], i };
}

function row(p, where) {
  const { snap, me, ended } = ctx;
  const key = personKey(p);
  const m = media(p);
  const h = handOf(p);
  const chair = snap.chairs.some((c) => key && personKey({ user_id: c.id, number: c.number }) === key);
  const presenter = snap.presenter && key && personKey({ user_id: snap.presenter.id, number: snap.presenter.number }) === key;
  const facts = [where];
  if (m) facts.push("in the call", m.audio === false ? "muted" : "microphone on", m.video === false ? "camera off" : "camera on");
  if (h) facts.push(h.hand.floor ? "has the floor" : `hand raised, number ${h.i + 1} in the queue`);
  const li = el("li", { class: `person${h ? " has-hand" : ""}${h?.hand.floor ? " has-floor" : ""}`, dataset: { key: key || "" } },
    el("span", { class: "person-name", text: p.name + (isMe(p) ? " (you)" : "") }),
    chair ? el("span", { class: "badge", text: "chair" }) : null,
    presenter ? el("span", { class: "badge", text: "presenter" }) : null,
    el("span", { class: "person-state hint", text: facts.join(" · ") }));
  if (me.chair && !ended) {
    const tools = el("span", { class: "person-tools" });
    if (h) tools.append(...handActions(h.hand, h.i));
    if (key && where === "remote" && !isMe(p) && m?.audio !== false) {   // not when People shows them muted
      tools.append(" ", el("button", { type: "button", class: "small", text: "Mute", "aria-label": `Mute ${p.name}`,
                                       onclick: () => mutePerson(key, p.name) }));
    }
    if (key && where === "remote" && !presenter && !chair) {
      tools.append(" ", el("button", { type: "button", class: "small", text: "Make presenter", "aria-label": `Make presenter: ${p.name}`,
                                       onclick: () => send("meeting_presenter", personRef(key)) }));
    }
    if (key && where === "remote" && !isMe(p)) {
      tools.append(" ", el("button", { type: "button", class: "small danger", text: "Remove", "aria-label": `Remove ${p.name} from the meeting`,
                                       onclick: () => {
                                         if (window.confirm(`Remove ${p.name} from the meeting? They cannot join again.`)) send("meeting_remove", personRef(key));
                                       } }));
    }
    if (tools.childElementCount) li.append(tools);
  }
  return li;
}

async function mutePerson(key, name) {
  if (!(await send("meeting_mute", personRef(key)))) return;
  const notice = $("mute-notice");
  notice.hidden = false;
  notice.textContent = `${name}'s microphone is muted. They can unmute when they want to speak.`;
}

export function renderPeople() {
  const snap = ctx.snap;
  if (!snap) return;
  const a = snap.attendance;
  const remote = a.remote.filter((r) => r.present && !r.removed);
  const devices = a.device.filter((d) => d.present);
  const heads = devices.reduce((n, d) => n + d.head_count, 0);
  setText($("att-summary"), `${remote.length} remote now · ${a.in_room.length} ticked in the room` + (heads ? ` · meeting-room head-count ${heads}` : ""));
  const keys = new Set(remote.map(personKey).filter(Boolean));
  const rows = remote.map((r) => row(r, "remote"));
  if (inCall() && !snap.non_attributed) {   // in the call but not (yet) in the register
    for (const m of call.people.values()) {
      if (!keys.has(`u${m.id}`)) rows.push(row({ user_id: m.id, name: m.name, number: null }, "remote"));
    }
  }
  rows.push(...a.in_room.map((r) => row(r, "in the room")),
            ...devices.map((d) => el("li", { class: "person" }, el("span", { class: "person-name", text: d.name }),
                                     el("span", { class: "person-state hint", text: `the meeting room's laptop · head-count ${d.head_count}` }))));
  const list = $("people-list");
  const sig = rows.map((r) => r.textContent).join("|");
  if (list.dataset.sig !== sig) {   // unchanged rows stay, and so does the focus on their buttons
    const active = list.contains(document.activeElement) ? document.activeElement : null;
    const focused = active?.getAttribute("aria-label");
    const rowKey = active?.closest("li[data-key]")?.dataset.key;
    list.replaceChildren(...rows);
    list.dataset.sig = sig;
    if (active) {   // the same button; if it went (a person just muted), the next one in that row, else the panel
      const same = focused && list.querySelector(`[aria-label="${CSS.escape(focused)}"]`);
      const inRow = rowKey && list.querySelector(`li[data-key="${CSS.escape(rowKey)}"] button`);
      (same || inRow || $("panel-people"))?.focus();
    }
  }
  setCount("people", remote.length + a.in_room.length + heads, "present");
  const gone = a.remote.filter((r) => (!r.present || r.removed) && !keys.has(personKey(r)));   // not back since
  const rooms = a.device.filter((d) => !d.present);
  $("people-left-h").hidden = $("people-left").hidden = !(gone.length + rooms.length);
  $("people-left").replaceChildren(
    ...gone.map((r) => el("li", { text: `${r.name} · joined ${clockTime(r.joined_at)}${r.left_at ? `, left ${clockTime(r.left_at)}` : ""}${r.removed ? " (removed by the chair)" : ""}` })),
    ...rooms.map((d) => el("li", { text: `${d.name} (head-count ${d.head_count}), left ${clockTime(d.left_at)}` })));
  const ticked = new Set(a.in_room.map(personKey).filter(Boolean));
  document.querySelectorAll("#att-invitees input[data-user-id], #att-invitees input[data-participant]").forEach((box) => {
    box.checked = ticked.has(boxKey(box));
  });
  markTiles();
}

/** A raised hand (or the floor) on each person's video tile. */
export function markTiles() {
  if (!ctx.snap) return;
  for (const tile of document.querySelectorAll("#grid .tile[data-participant-id]")) {
    const id = Number(tile.dataset.participantId);
    const name = tile.querySelector(".tile-name").textContent.replace(/ \(you\)$/, "");
    const h = ctx.snap.hands.find((x) => (x.user_id ? x.user_id === id : x.name === name));
    const mark = tile.querySelector(".tile-hand");
    mark.hidden = !h;
    tile.classList.toggle("has-hand", !!h);
    if (h) setText(mark.querySelector(".tile-hand-text"), h.floor ? "Has the floor" : `Hand raised (${ctx.snap.hands.indexOf(h) + 1})`);
  }
}

let pending = false;
function soon() {
  if (pending) return;
  pending = true;
  setTimeout(() => { pending = false; renderPeople(); }, 0);
}

export function initPeople() {
  $("att-invitees")?.addEventListener("change", (e) => {
    const box = e.target.closest("input[data-user-id], input[data-participant]");
    if (box) send("meeting_attend", { ...personRef(boxKey(box)), present: box.checked });
  });
  $("att-add")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("att-add-name");
    if (await send("meeting_attend", { name: input.value, present: true })) input.value = "";
  });
  document.addEventListener("meeting:tiles", soon);   // someone joined, left, muted, turned a camera off
  const c = $("call");
  if (c) new MutationObserver(soon).observe(c, { attributes: true, attributeFilter: ["hidden"] });
}
