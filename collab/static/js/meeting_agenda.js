// Agenda and papers: the pre-read decks with their conversion progress, a download and "Page
// through" (onto the stage), and for the chair "Remove". The agenda itself is in the page.
import { csrfInput } from "./csrf.js";
import { byId as $, el } from "./dom.js";
import { ctx } from "./meeting_hybrid.js";
import { pageThrough, present } from "./meeting_stage.js";

const STATUS = { queued: "Waiting to be prepared", converting: "Preparing slides", ready: "Ready",
                 failed: "Could not be shown", download: "Download only" };
let shownSig = "";

export function renderDecks() {
  const { snap, me, noFiles, slidesBase } = ctx;
  const sig = JSON.stringify([snap.decks, me.chair, me.presenter]);
  if (sig === shownSig) return;   // keep focus on a button of the list while the state changes elsewhere
  shownSig = sig;
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
    if (d.status === "ready" && me.presenter && !ctx.ended) {   // on everyone's stage, from its first page
      tools.append(el("button", { type: "button", class: "small primary", text: "Present", "aria-label": `Present ${d.filename}`,
                                  onclick: () => present(d.id) }), " ");
    } else if (d.status === "ready" && !noFiles) {
      tools.append(el("button", { type: "button", class: "small", text: "Page through", "aria-label": `Page through ${d.filename}`,
                                  onclick: () => pageThrough(d.id) }), " ");
    }
    if (!noFiles) {
      tools.append(el("a", { class: "button small", href: `${slidesBase}${d.id}/file`, text: "Download",
                             "aria-label": `Download ${d.filename}` }));
    }
    if (me.chair) {
      const form = el("form", { method: "post", action: `${slidesBase}${d.id}/delete`, class: "inline",
                                "data-confirm": `Remove ${d.filename} from this meeting?` },
        csrfInput(),
        el("button", { type: "submit", class: "danger small", text: "Remove", "aria-label": `Remove ${d.filename}` }));
      tools.append(" ", form);
    }
    li.append(" ", tools);
    list.append(li);
  }
}
