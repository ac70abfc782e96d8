// Hybrid meeting panels (issue 6): pre-read decks with conversion progress, slides that
// follow the presenter (images, never video), raised hands, key messages and votes,
// attendance, chat, and the chair's tools. All state lives on the server: on every
// (re)connect the page asks for it (`meeting_join`) and then applies each
// `meeting.state` the server sends. Works beside meeting.js (audio/video), which it only
// touches by pressing its mute button when the chair mutes everyone or gives the floor.
// It talks over the page's one Socket.IO connection (socket.js), the one live.js uses too.
import { csrfInput } from "./csrf.js";
import { clockTime } from "./dates.js";
import { byId as $, el } from "./dom.js";
import { socket } from "./socket.js";

const root = $("hybrid");

if (root) init();

function init() {
  const meetingId = Number(root.dataset.meetingId);
  const ended = !!root.dataset.ended;
  const slidesBase = root.dataset.slidesBase;
  // A guest in a room labelled above the lowest label sees which papers exist, never their files or slides.
  const noFiles = !!root.dataset.noFiles;
  const NO_SLIDES = "Slides are not shown to guests in OFFICIAL-SENSITIVE rooms.";
  const view = { following: true, deckId: null, page: 1 };
  let snap = null;
  let me = { chair: !!root.dataset.chair, presenter: !!root.dataset.chair, participant: false, votes: {} };
  let device = null; // {head_count} once this laptop joined as the meeting room
  // People in the state: by account id where names are shown, else by their number in the meeting
  // ("Participant n" of a non-attributed room). A key is "u<id>" or "p<number>".
  const personKey = (p) => (p.user_id ? `u${p.user_id}` : (p.number ? `p${p.number}` : null));
  const boxKey = (box) => (box.dataset.userId ? `u${box.dataset.userId}` : `p${box.dataset.participant}`);
  const personRef = (key) => (key[0] === "u" ? { user_id: Number(key.slice(1)) } : { participant: Number(key.slice(1)) });
  const isMe = (p) => (p.user_id != null && p.user_id === me.id) || (p.number != null && p.number === me.number);
  let removed = false;
  let knownHands = new Set();
  let chatShown = 0;

  // -- talking to the server ------------------------------------------------------------------

  function showError(message) {
    const p = $("hybrid-error");
    p.textContent = message || "";
    p.hidden = !message;
  }

  function send(event, data = {}) {
    return new Promise((resolve) => {
      socket.timeout(10000).emit(event, { meeting_id: meetingId, ...data }, (err, ack) => {
        if (err) {
          showError("The server did not answer. Check your connection; nothing was lost.");
          resolve(null);
          return;
        }
        if (!ack.ok) showError(ack.error.message);
        else showError("");
        resolve(ack.ok ? ack : null);
      });
    });
  }

  // -- joining and state ---------------------------------------------------------------------

  async function join() {
    if (removed) return;
    const data = device ? { device: true, head_count: device.head_count } : {};
    const ack = await send("meeting_join", data);
    if (ack) apply(ack.state);
  }

  function apply(next) {
    if (!next || next.meeting_id !== meetingId) return;
    if (snap && next.version < snap.version) return; // an older message overtaken by a newer one
    if (next.me) me = next.me;
    const before = snap;
    snap = next;
    renderDecks();
    renderSlides(before);
    renderHands();
    renderKeyMessages();
    renderAttendance();
    renderChat();
    renderChair();
  }

  socket.on("connect", join);
  if (socket.connected) join();
  socket.on("meeting.state", apply);
  socket.on("meeting.chat", (m) => {
    if (m.meeting_id !== meetingId || !snap) return;
    if (!snap.chat.some((c) => c.id === m.message.id)) snap.chat.push(m.message);
    renderChat();
  });
  // The chair's "give the floor" asks; the person chooses (Unmute now / Stay muted). "Mute everyone"
  // mutes this page's microphone at once (as in Jitsi or BigBlueButton) and says who did it; the
  // person can unmute again when they want to speak.
  function inCall() { return !!$("call") && !$("call").hidden; }
  function muted() { return $("mute-button")?.getAttribute("aria-pressed") === "true"; }
  socket.on("meeting.floor", (m) => {
    if (m.meeting_id !== meetingId) return;
    $("mute-notice").hidden = true;
    $("floor-text").textContent = m.message;
    $("floor-unmute").textContent = inCall() ? "Unmute now" : "Join and speak";
    $("floor-prompt").hidden = false;
    $("floor-unmute").focus();
  });
  socket.on("meeting.mute", (m) => {
    if (m.meeting_id !== meetingId || m.except === me.id || (m.except_number && m.except_number === me.number)) return;
    const notice = $("mute-notice");
    $("floor-prompt").hidden = true;
    if (inCall()) {
      if (!muted()) $("mute-button").click();
      notice.textContent = `${m.by} muted everyone's microphone, yours too. Unmute when you want to speak.`;
    } else if ($("join-muted")) {
      $("join-muted").checked = true;
      notice.textContent = `${m.by} muted everyone: you will join muted.`;
    } else {
      return; // an observer: no microphone
    }
    notice.hidden = false;
  });
  // Removed from this meeting by the chair, or no longer allowed to read its room (rooms/revocation.py):
  // the server has already taken this page out of the meeting's channel; say why and stop.
  function cutOff(message) {
    removed = true;
    showError(message);
    const leave = $("leave-button");
    if (leave && !$("call")?.hidden) leave.click();
    root.querySelectorAll("button, input, select, textarea").forEach((b) => { b.disabled = true; });
  }
  socket.on("meeting.removed", (m) => { if (m.meeting_id === meetingId) cutOff(m.message); });
  socket.on("access.revoked", (m) => { if (m.room_id === Number(root.dataset.roomId)) cutOff(m.message); });
  $("floor-unmute")?.addEventListener("click", () => {
    $("floor-prompt").hidden = true;
    $("mute-notice").hidden = true;
    if (inCall()) {
      if (muted()) $("mute-button").click();
    } else if ($("join-button") && !$("join-button").disabled) {
      if ($("join-muted")) $("join-muted").checked = false;
      $("join-button").click();
    }
  });
  $("floor-dismiss")?.addEventListener("click", () => { $("floor-prompt").hidden = true; });
  $("mute-button")?.addEventListener("click", () => { if (!muted()) $("mute-notice").hidden = true; });
  if (!ended) {
    setInterval(() => { if (socket.connected && !removed) send("meeting_here"); }, 25000);
    window.addEventListener("pagehide", () => socket.emit("meeting_leave", { meeting_id: meetingId }));
  }

  // -- decks ---------------------------------------------------------------------------------

  const STATUS = { queued: "Waiting to be prepared", converting: "Preparing slides", ready: "Ready",
                   failed: "Could not be shown", download: "Download only" };

  function renderDecks() {
    const list = $("deck-list");
    list.replaceChildren();
    $("deck-empty").hidden = snap.decks.length > 0;
    for (const d of snap.decks) {
      const li = el("li", { class: `deck deck-${d.status}`, dataset: { deckId: d.id } },
        el("span", { class: "deck-name", text: d.filename }), " ",
        el("span", { class: "deck-status", text: STATUS[d.status] + (d.status === "ready" ? ` · ${d.pages} page${d.pages === 1 ? "" : "s"}` : "") }));
      if (d.status === "converting" || d.status === "queued") {
        const label = d.pages ? `${d.done} of ${d.pages} pages ready` : "Starting…";
        li.append(" ", el("progress", { max: String(d.pages || 1), value: String(d.done || 0), "aria-label": `${d.filename}: ${label}` }),
          " ", el("span", { class: "hint", text: label }));
      }
      if (d.message) li.append(el("p", { class: d.status === "failed" ? "field-error" : "hint", text: d.message }));
      const tools = el("span", { class: "deck-tools" });
      if (d.status === "ready" && !noFiles) {
        tools.append(el("button", { type: "button", text: "Page through", "aria-label": `Page through ${d.filename}`,
                                    onclick: () => { browse(d.id, 1); $("slide-img").focus?.(); } }), " ");
      }
      if (!noFiles) {
        tools.append(el("a", { class: "button", href: `${slidesBase}${d.id}/file`, text: "Download",
                               "aria-label": `Download ${d.filename}` }));
      }
      if (me.chair) {
        const form = el("form", { method: "post", action: `${slidesBase}${d.id}/delete`, class: "inline",
                                  "data-confirm": `Remove ${d.filename} from this meeting?` },
          csrfInput(),
          el("button", { type: "submit", class: "danger", text: "Remove", "aria-label": `Remove ${d.filename}` }));
        tools.append(" ", form);
      }
      li.append(" ", tools);
      list.append(li);
    }
    const select = $("slide-deck");
    const ready = snap.decks.filter((d) => d.status === "ready");
    const current = select.value;
    select.replaceChildren(...ready.map((d) => el("option", { value: String(d.id), text: d.filename })));
    if (current && ready.some((d) => String(d.id) === current)) select.value = current;
  }

  // -- slides ----------------------------------------------------------------------------------

  function deckById(id) {
    return snap?.decks.find((d) => d.id === id && d.status === "ready") || null;
  }

  function shown() {
    if (view.following && snap?.deck_id && deckById(snap.deck_id)) return { deckId: snap.deck_id, page: snap.page };
    if (view.deckId && deckById(view.deckId)) return { deckId: view.deckId, page: view.page };
    const first = snap?.decks.find((d) => d.status === "ready");
    return first ? { deckId: first.id, page: 1 } : null;
  }

  function renderSlides(before) {
    const s = shown();
    const img = $("slide-img");
    const follow = $("slide-follow");
    const presenting = me.presenter && !ended;
    follow.setAttribute("aria-pressed", String(view.following));
    follow.textContent = view.following ? "Following presenter" : "Follow presenter";
    follow.hidden = presenting;
    const who = snap.presenter ? snap.presenter.name : (snap.chairs.map((c) => c.name).join(", ") || "the chair");
    $("slide-who").textContent = presenting ? "You can move the slides for everyone." : `Slides are presented by ${who}.`;
    if (!s) {
      img.hidden = true;
      $("slide-number").textContent = "–";
      $("slide-status").textContent = snap.decks.length ? "The slides are being prepared." : "No slides to show yet.";
      ["slide-prev", "slide-next"].forEach((id) => { $(id).disabled = true; });
      return;
    }
    const deck = deckById(s.deckId);
    if (noFiles) {   // the deck and slide number only: no image is asked for
      img.hidden = true;
      img.removeAttribute("src");
      $("slide-number").textContent = `Slide ${s.page} of ${deck.pages}`;
      $("slide-status").textContent = NO_SLIDES;
      ["slide-prev", "slide-next"].forEach((id) => { $(id).disabled = true; });
      return;
    }
    const src = `${slidesBase}${s.deckId}/pages/${s.page}.png`;
    if (img.getAttribute("src") !== src) img.setAttribute("src", src);
    img.hidden = false;
    img.alt = `${deck.filename}, slide ${s.page} of ${deck.pages}`;
    img.dataset.deckId = String(s.deckId);
    img.dataset.page = String(s.page);
    $("slide-deck").value = String(s.deckId);
    $("slide-number").textContent = `Slide ${s.page} of ${deck.pages}`;
    $("slide-prev").disabled = s.page <= 1;
    $("slide-next").disabled = s.page >= deck.pages;
    if (s.page < deck.pages) new Image().src = `${slidesBase}${s.deckId}/pages/${s.page + 1}.png`; // preload
    const moved = !before || before.deck_id !== snap.deck_id || before.page !== snap.page;
    if (view.following && moved && snap.deck_id) {
      $("slide-status").textContent = `Slide ${s.page} of ${deck.pages}${presenting ? "" : ", following the presenter"}.`;
    } else if (!view.following && moved && snap.deck_id) {
      $("slide-status").textContent = `You are browsing on your own; the presenter is on slide ${snap.page}. Press “Follow presenter” to go back.`;
    }
  }

  function browse(deckId, page) {
    view.following = false;
    view.deckId = deckId;
    view.page = page;
    const deck = deckById(deckId);
    renderSlides(snap);
    if (deck) $("slide-status").textContent = `Browsing on your own: slide ${page} of ${deck.pages}.`;
  }

  function step(delta) {
    const s = shown();
    if (!s) return;
    const deck = deckById(s.deckId);
    const page = Math.min(Math.max(1, s.page + delta), deck.pages);
    if (page === s.page) return;
    if (me.presenter && !ended) {
      view.following = true;
      snap = { ...snap, deck_id: s.deckId, page }; // shown at once; the server's state confirms it
      renderSlides(null);
      send("meeting_slide", { deck_id: s.deckId, page });
    } else {
      browse(s.deckId, page);
    }
  }

  $("slide-prev").addEventListener("click", () => step(-1));
  $("slide-next").addEventListener("click", () => step(1));
  $("slide-follow").addEventListener("click", () => {
    view.following = true;
    renderSlides(null);
  });
  $("slide-deck").addEventListener("change", (e) => {
    const id = Number(e.target.value);
    if (me.presenter && !ended) {
      view.following = true;
      send("meeting_slide", { deck_id: id, page: 1 });
    } else browse(id, 1);
  });
  $("take-over")?.addEventListener("click", () => send("meeting_presenter", { user_id: me.id }));
  $("presenter-select")?.addEventListener("change", (e) => send("meeting_presenter", e.target.value ? personRef(e.target.value) : { user_id: null }));
  document.addEventListener("keydown", (e) => {
    if (!e.altKey || !e.shiftKey) return;
    if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
    if ((e.key === "H" || e.key === "h") && $("hand-button")) { e.preventDefault(); $("hand-button").click(); }
  });

  // -- hands ------------------------------------------------------------------------------------

  function renderHands() {
    const list = $("hand-list");
    if (!list) return;
    list.replaceChildren();
    $("hand-empty").hidden = snap.hands.length > 0;
    const fresh = [];
    snap.hands.forEach((h, i) => {
      if (!knownHands.has(h.id)) fresh.push(h);
      const li = el("li", { class: `hand${h.floor ? " has-floor" : ""}`, dataset: { handId: h.id } },
        el("span", { class: "hand-name", text: h.name }),
        h.in_room ? el("span", { class: "badge", text: "in the room" }) : null,
        h.floor ? el("strong", { class: "floor", text: " has the floor" }) : null,
        el("span", { class: "hint", text: ` raised ${clockTime(h.raised_at)}` }));
      if (me.chair && !ended) {
        if (!h.floor) li.append(" ", el("button", { type: "button", text: "Give the floor", "aria-label": `Give the floor to ${h.name}`,
                                                     onclick: () => send("meeting_floor", { hand_id: h.id }) }));
        li.append(" ", el("button", { type: "button", text: "Lower", "aria-label": `Lower ${h.name}'s hand (number ${i + 1})`,
                                      onclick: () => send("meeting_hand_lower", { hand_id: h.id }) }));
      }
      list.append(li);
    });
    if (knownHands.size || snap.version) {
      const msg = fresh.map((h) => `${h.name} raised a hand, number ${snap.hands.indexOf(h) + 1} in the queue.`).join(" ");
      if (msg && knownHands.size >= 0) $("hand-announcer").textContent = msg;
    }
    knownHands = new Set(snap.hands.map((h) => h.id));
    const b = $("hand-button");
    if (b) {
      const up = snap.hands.some(isMe);
      b.setAttribute("aria-pressed", String(up));
      b.firstChild.textContent = up ? "Lower my hand " : "Raise hand ";
      b.disabled = !me.participant || ended;
    }
  }

  $("hand-button")?.addEventListener("click", () => {
    const up = $("hand-button").getAttribute("aria-pressed") !== "true";
    send("meeting_hand", { up });
  });
  $("hand-add")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("hand-add-name");
    if (await send("meeting_hand_add", { name: input.value })) input.value = "";
  });

  // -- key messages --------------------------------------------------------------------------------

  const OUTCOMES = { agreed: "Agreed", not_agreed: "Not agreed", deferred: "Deferred" };
  const kmSig = new Map();

  function tallyText(t) {
    const x = t.total;
    return `Agree ${x.agree} · Disagree ${x.disagree} · Abstain ${x.abstain} (remote ${t.remote.agree}/${t.remote.disagree}/${t.remote.abstain}, in the room ${t.room.agree}/${t.room.disagree}/${t.room.abstain})`;
  }

  function kmControls(km) {
    const box = el("div", { class: "km-controls" });
    const mine = me.votes?.[String(km.id)];
    if (km.status === "open" && me.participant && !ended) {
      const name = `vote-${km.id}`;
      const fs = el("fieldset", { class: "vote" }, el("legend", { text: "Your vote" }));
      for (const [value, label] of [["agree", "Agree"], ["disagree", "Disagree"], ["abstain", "Abstain"]]) {
        const id = `${name}-${value}`;
        fs.append(el("span", { class: "check" }, el("input", { type: "radio", name, id, value, checked: mine?.choice === value }),
                     el("label", { for: id, text: label })));
      }
      const cid = `${name}-comment`;
      fs.append(el("label", { for: cid, text: "Comment (optional)" }),
                el("input", { id: cid, maxlength: "500", value: mine?.comment || "" }),
                el("button", { type: "button", class: "primary", text: mine ? "Change my vote" : "Vote",
                               onclick: async () => {
                                 const choice = fs.querySelector("input[type=radio]:checked")?.value;
                                 if (!choice) { showError("Choose agree, disagree or abstain first."); return; }
                                 const ack = await send("km_vote", { key_message_id: km.id, choice, comment: $(cid).value });
                                 if (ack) {
                                   me.votes = { ...me.votes, [String(km.id)]: ack.my_vote };
                                   $("km-announcer").textContent = `Your vote “${choice}” is recorded. You can change it until the vote closes.`;
                                 }
                               } }));
      box.append(fs);
    } else if (mine) {
      box.append(el("p", { class: "hint", text: `Your vote: ${mine.choice}` }));
    }
    if (me.chair && !ended && km.status !== "closed") {
      const tid = `km-text-${km.id}`;
      box.append(el("details", {}, el("summary", { text: "Change the wording" }),
        el("label", { for: tid, text: "Key message" }), el("textarea", { id: tid, rows: "2", maxlength: "1000" }, km.text),
        el("button", { type: "button", text: "Save wording", onclick: () => send("km_edit", { key_message_id: km.id, text: $(tid).value }) })));
      if (km.status === "draft") {
        box.append(el("button", { type: "button", class: "primary", text: "Put to the vote", "aria-label": `Put to the vote: ${km.text}`,
                                  onclick: () => send("km_open", { key_message_id: km.id }) }));
      } else {
        const row = el("div", { class: "stack-row" });
        const ids = {};
        for (const [k, label] of [["agree", "In the room agree"], ["disagree", "In the room disagree"], ["abstain", "In the room abstain"]]) {
          ids[k] = `km-${km.id}-room-${k}`;
          row.append(el("label", { for: ids[k], text: label }),
                     el("input", { id: ids[k], type: "number", min: "0", max: "1000", inputmode: "numeric", value: String(km.tally.room[k]) }));
        }
        row.append(el("button", { type: "button", text: "Save room count",
                                  onclick: () => send("km_room", { key_message_id: km.id, agree: $(ids.agree).value,
                                                                   disagree: $(ids.disagree).value, abstain: $(ids.abstain).value }) }));
        const oid = `km-${km.id}-outcome`;
        const close = el("div", { class: "stack-row" }, el("label", { for: oid, text: "Outcome" }),
          el("select", { id: oid }, ...Object.entries(OUTCOMES).map(([v, l]) => el("option", { value: v, text: l }))),
          el("button", { type: "button", class: "primary", text: "Close vote", "aria-label": `Close the vote on: ${km.text}`,
                         onclick: () => send("km_close", { key_message_id: km.id, outcome: $(oid).value }) }));
        box.append(row, close);
      }
    }
    return box;
  }

  function renderKeyMessages() {
    const list = $("km-list");
    $("km-empty").hidden = snap.key_messages.length > 0;
    const seen = new Set();
    snap.key_messages.forEach((km) => {
      seen.add(km.id);
      let li = list.querySelector(`li[data-km-id="${km.id}"]`);
      const sig = JSON.stringify([km.status, km.text, km.outcome, me.chair, me.participant, me.votes?.[String(km.id)]?.choice]);
      const status = km.status === "closed" ? `Closed: ${OUTCOMES[km.outcome] || km.outcome}` : km.status === "open" ? "Vote open" : "Draft";
      if (!li || kmSig.get(km.id) !== sig) {
        const old = kmSig.get(km.id);
        const fresh = el("li", { class: `km km-${km.status}`, dataset: { kmId: km.id } },
          el("p", { class: "km-text", text: km.text }),
          el("p", {}, el("span", { class: "km-status badge", text: status }), " ",
             el("span", { class: "km-tally", text: tallyText(km.tally) })),
          kmControls(km));
        if (li) li.replaceWith(fresh); else list.append(fresh);
        li = fresh;
        if (old && JSON.parse(old)[0] !== km.status) {
          $("km-announcer").textContent = km.status === "open" ? `Vote open: ${km.text}` : `${status}: ${km.text}. ${tallyText(km.tally)}`;
        }
        kmSig.set(km.id, sig);
      } else {
        li.querySelector(".km-tally").textContent = tallyText(km.tally);
      }
    });
    list.querySelectorAll("li[data-km-id]").forEach((li) => { if (!seen.has(Number(li.dataset.kmId))) li.remove(); });
  }

  $("km-draft")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = $("km-draft-text");
    if (await send("km_draft", { text: t.value })) t.value = "";
  });

  // -- attendance ---------------------------------------------------------------------------------

  function renderAttendance() {
    const a = snap.attendance;
    const remotePresent = a.remote.filter((r) => r.present && !r.removed);
    const heads = a.device.filter((d) => d.present).reduce((n, d) => n + d.head_count, 0);
    const inRoom = a.in_room.length;
    $("att-summary").textContent = `${remotePresent.length} remote now · ${inRoom} ticked in the room` + (heads ? ` · meeting-room head-count ${heads}` : "");
    $("att-room").replaceChildren(...a.in_room.map((r) => el("li", { text: r.name })),
      ...a.device.map((d) => el("li", { text: `${d.name} (head-count ${d.head_count}${d.present ? "" : `, left ${clockTime(d.left_at)}`})` })));
    $("att-remote").replaceChildren(...a.remote.map((r) => el("li", {
      text: `${r.name} · joined ${clockTime(r.joined_at)}${r.left_at ? `, left ${clockTime(r.left_at)}` : ""}${r.removed ? " (removed by the chair)" : ""}` })));
    const ticked = new Set(a.in_room.map(personKey).filter(Boolean));
    document.querySelectorAll("#att-invitees input[data-user-id], #att-invitees input[data-participant]").forEach((box) => {
      box.checked = ticked.has(boxKey(box));
    });
  }

  $("att-invitees")?.addEventListener("change", (e) => {
    const box = e.target.closest("input[data-user-id], input[data-participant]");
    if (box) send("meeting_attend", { ...personRef(boxKey(box)), present: box.checked });
  });
  $("att-add")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("att-add-name");
    if (await send("meeting_attend", { name: input.value, present: true })) input.value = "";
  });
  $("device-join")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    device = { head_count: Number($("device-heads").value) || 0 };
    const ack = await send("meeting_join", { device: true, head_count: device.head_count });
    if (ack) {
      apply(ack.state);
      $("slide-status").textContent = `This laptop is registered as “Meeting room” with ${device.head_count} people.`;
    }
  });

  // -- chat ---------------------------------------------------------------------------------------------

  function renderChat() {
    const log = $("chat-log");
    if (snap.chat.length === chatShown && log.childElementCount === chatShown) return;
    log.replaceChildren(...snap.chat.map((c) => el("li", {},
      el("span", { class: "chat-name", text: c.name }), el("span", { class: "hint", text: ` ${clockTime(c.at)} ` }),
      el("span", { class: "chat-body", text: c.body }))));
    chatShown = snap.chat.length;
    log.scrollTop = log.scrollHeight;
  }

  $("chat-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const input = $("chat-text");
    if (!input.value.trim()) return;
    if (await send("meeting_chat", { body: input.value })) input.value = "";
  });

  // -- chair --------------------------------------------------------------------------------------------

  function renderChair() {
    const lock = $("lock-button");
    if (lock) {
      lock.setAttribute("aria-pressed", String(snap.locked));
      lock.textContent = snap.locked ? "Unlock meeting" : "Lock meeting";
    }
    const sel = $("presenter-select");
    if (sel) {
      const people = new Map();
      for (const r of snap.attendance.remote) if (personKey(r) && r.present && !r.removed) people.set(personKey(r), r.name);
      const presenter = snap.presenter ? personKey({ user_id: snap.presenter.id, number: snap.presenter.number }) : null;
      if (presenter) people.set(presenter, snap.presenter.name);
      sel.replaceChildren(el("option", { value: "", text: "The chairs" }),
        ...[...people].map(([key, name]) => el("option", { value: key, text: name })));
      sel.value = presenter || "";
    }
    const who = $("remove-who");
    if (who) {
      const keep = who.value;
      const people = snap.attendance.remote.filter((r) => personKey(r) && r.present && !r.removed && !isMe(r));
      who.replaceChildren(el("option", { value: "", text: "Choose…" }),
        ...people.map((r) => el("option", { value: personKey(r), text: r.name })));
      who.value = keep;
    }
    const actions = $("action-list");
    if (actions) actions.replaceChildren(...snap.actions.map((a) => el("li", { text: a.text + (a.owner ? ` (${a.owner})` : "") })));
  }

  $("mute-all")?.addEventListener("click", async () => {
    if (await send("meeting_mute_all")) {
      $("mute-notice").textContent = "Everyone else's microphone is muted. They can unmute when they want to speak.";
      $("mute-notice").hidden = false;
    }
  });
  $("lock-button")?.addEventListener("click", () => send("meeting_lock", { locked: !snap?.locked }));
  $("remove-form")?.addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("remove-who").value;
    if (key && window.confirm("Remove this person from the meeting? They cannot join again.")) send("meeting_remove", personRef(key));
  });
  $("action-form")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (await send("meeting_action", { text: $("action-text").value, owner: $("action-owner").value })) {
      $("action-text").value = "";
      $("action-owner").value = "";
    }
  });
}
