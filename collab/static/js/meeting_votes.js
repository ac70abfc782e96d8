// Key messages and votes: the chair drafts a key message, puts it to the vote (choosing whether the
// running tally stays hidden until each person has voted), counts the people in the room, and closes
// the vote by choosing the outcome with the tally in front of them: Agreed, Not agreed or Deferred,
// never a default. Everyone who may post votes agree / disagree / abstain, with a comment.
import { byId as $, el } from "./dom.js";
import { ctx, send, showError } from "./meeting_hybrid.js";
import { setCount } from "./meeting_layout.js";

const OUTCOMES = { agreed: "Agreed", not_agreed: "Not agreed", deferred: "Deferred" };
const CHOICES = [["agree", "Agree"], ["disagree", "Disagree"], ["abstain", "Abstain"]];
const kmSig = new Map();

/** The tally this person may see: in the shared state, or (hidden from the others) their own. */
const tallyOf = (km) => km.tally || (km.status === "open" ? ctx.tallies[String(km.id)] : null) || null;

function tallyText(km) {
  const t = tallyOf(km);
  if (!t) {
    return ctx.me.participant && km.status === "open" ? "The tally is hidden until you vote." : "The tally is hidden until the vote closes.";
  }
  const x = t.total;
  return `Agree ${x.agree} · Disagree ${x.disagree} · Abstain ${x.abstain} (remote ${t.remote.agree}/${t.remote.disagree}/${t.remote.abstain}, in the room ${t.room.agree}/${t.room.disagree}/${t.room.abstain})`;
}

function radios(name, options, checked) {
  return options.map(([value, label]) => {
    const id = `${name}-${value}`;
    return el("span", { class: "check" }, el("input", { type: "radio", name, id, value, checked: checked === value }),
              el("label", { for: id, text: label }));
  });
}

function voteForm(km, mine) {
  const name = `vote-${km.id}`;
  const cid = `${name}-comment`;
  const fs = el("fieldset", { class: "vote" }, el("legend", { text: "Your vote" }), ...radios(name, CHOICES, mine?.choice));
  fs.append(el("label", { for: cid, text: "Comment (optional)" }),
            el("input", { id: cid, maxlength: "500", value: mine?.comment || "" }),
            el("button", { type: "button", class: "primary", text: mine ? "Change my vote" : "Vote",
                           onclick: async () => {
                             const choice = fs.querySelector("input[type=radio]:checked")?.value;
                             if (!choice) { showError("Choose agree, disagree or abstain first."); return; }
                             const ack = await send("km_vote", { key_message_id: km.id, choice, comment: $(cid).value });
                             if (ack) {
                               ctx.me.votes = { ...ctx.me.votes, [String(km.id)]: ack.my_vote };
                               if (ack.tally) { ctx.tallies[String(km.id)] = ack.tally; renderKeyMessages(); }
                               $("km-announcer").textContent = `Your vote “${choice}” is recorded. You can change it until the vote closes.`;
                             }
                           } }));
  return fs;
}

function roomCount(km) {
  const row = el("div", { class: "stack-row" });
  const ids = {};
  for (const [k, label] of CHOICES) {
    ids[k] = `km-${km.id}-room-${k}`;
    row.append(el("label", { for: ids[k], text: `In the room ${label.toLowerCase()}` }),
               el("input", { id: ids[k], type: "number", min: "0", max: "1000", inputmode: "numeric", value: String(tallyOf(km)?.room[k] ?? 0) }));
  }
  row.append(el("button", { type: "button", text: "Save room count",
                            onclick: () => send("km_room", { key_message_id: km.id, agree: $(ids.agree).value,
                                                             disagree: $(ids.disagree).value, abstain: $(ids.abstain).value }) }));
  return row;
}

function closeForm(km) {
  const name = `km-${km.id}-outcome`;
  const err = el("p", { class: "field-error", id: `${name}-error`, role: "alert", hidden: true });
  const fs = el("fieldset", { class: "vote outcome" }, el("legend", { text: "Outcome of the vote" }),
                ...radios(name, Object.entries(OUTCOMES), null));
  const close = el("button", { type: "button", class: "primary", text: "Close vote", "aria-label": `Close vote: ${km.text}`,
                               onclick: () => {
                                 const outcome = fs.querySelector("input[type=radio]:checked")?.value;
                                 if (!outcome) {
                                   err.textContent = "Choose the outcome first: Agreed, Not agreed or Deferred.";
                                   err.hidden = false;
                                   fs.setAttribute("aria-describedby", err.id);
                                   fs.querySelector("input").focus();
                                   return;
                                 }
                                 send("km_close", { key_message_id: km.id, outcome });
                               } });
  fs.addEventListener("change", () => { err.hidden = true; });
  return el("div", { class: "km-close" }, fs, err, close);
}

function kmControls(km) {
  const { me, ended } = ctx;
  const box = el("div", { class: "km-controls" });
  const mine = me.votes?.[String(km.id)];
  if (km.status === "open" && me.participant && !ended) box.append(voteForm(km, mine));
  else if (mine) box.append(el("p", { class: "hint", text: `Your vote: ${mine.choice}` }));
  if (!me.chair || ended || km.status === "closed") return box;
  const tid = `km-text-${km.id}`;
  box.append(el("details", {}, el("summary", { text: "Change the wording" }),
    el("label", { for: tid, text: "Key message" }), el("textarea", { id: tid, rows: "2", maxlength: "1000" }, km.text),
    el("button", { type: "button", text: "Save wording", onclick: () => send("km_edit", { key_message_id: km.id, text: $(tid).value }) })));
  if (km.status === "draft") {
    const hid = `km-${km.id}-hide`;
    box.append(el("div", { class: "check" }, el("input", { type: "checkbox", id: hid }),
                  el("label", { for: hid, text: "Hide the running tally until each person has voted" })),
               el("button", { type: "button", class: "primary", text: "Put to the vote", "aria-label": `Put to the vote: ${km.text}`,
                              onclick: () => send("km_open", { key_message_id: km.id, hide_tally: $(hid).checked }) }));
  } else {
    box.append(roomCount(km), closeForm(km));
  }
  return box;
}

export function renderKeyMessages() {
  const { snap, me } = ctx;
  const list = $("km-list");
  $("km-empty").hidden = snap.key_messages.length > 0;
  setCount("votes", snap.key_messages.filter((k) => k.status === "open").length, "open");
  const seen = new Set();
  snap.key_messages.forEach((km) => {
    seen.add(km.id);
    let li = list.querySelector(`li[data-km-id="${km.id}"]`);
    const sig = JSON.stringify([km.status, km.text, km.outcome, km.hide_tally, !tallyOf(km), me.chair, me.participant,
                                me.votes?.[String(km.id)]?.choice]);
    const status = km.status === "closed" ? `Closed: ${OUTCOMES[km.outcome] || km.outcome}` : km.status === "open" ? "Vote open" : "Draft";
    if (!li || kmSig.get(km.id) !== sig) {
      const old = kmSig.get(km.id);
      const fresh = el("li", { class: `km km-${km.status}`, dataset: { kmId: km.id } },
        el("p", { class: "km-text", text: km.text }),
        el("p", {}, el("span", { class: "km-status badge", text: status }), " ",
           km.hide_tally && km.status === "open" ? el("span", { class: "badge", text: "tally hidden" }) : null, " ",
           el("span", { class: "km-tally", text: tallyText(km) })),
        kmControls(km));
      if (li) li.replaceWith(fresh); else list.append(fresh);
      li = fresh;
      if (old && JSON.parse(old)[0] !== km.status) {
        $("km-announcer").textContent = km.status === "open" ? `Vote open: ${km.text}` : `${status}: ${km.text}. ${tallyText(km)}`;
      }
      kmSig.set(km.id, sig);
    } else {
      li.querySelector(".km-tally").textContent = tallyText(km);
    }
  });
  list.querySelectorAll("li[data-km-id]").forEach((li) => { if (!seen.has(Number(li.dataset.kmId))) li.remove(); });
}

export function initVotes() {
  $("km-draft")?.addEventListener("submit", async (e) => {
    e.preventDefault();
    const t = $("km-draft-text");
    if (await send("km_draft", { text: t.value })) t.value = "";
  });
}
