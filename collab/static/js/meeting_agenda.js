// Agenda and papers: the pre-read decks with their conversion progress, a download and "Page
// through" (onto the stage), and for the chair "Remove". The agenda itself is in the page.
import { csrfInput } from "./csrf.js";
import { byId as $, el } from "./dom.js";
import { ctx, inCall, showError } from "./meeting_hybrid.js";
import { pageThrough, present } from "./meeting_stage.js";

/** In the call, attaching or removing a paper must not reload the page (that would leave the call):
 * the form goes by fetch, the list follows from the meeting's state, and the server's message is shown. */
async function sendInPlace(form) {
  const button = form.querySelector("button[type=submit], button:not([type])");
  if (button) button.disabled = true;
  try {
    const resp = await fetch(form.action, { method: "POST", body: new FormData(form), credentials: "same-origin" });
    const page = new DOMParser().parseFromString(await resp.text(), "text/html");
    const flash = page.querySelector(".flashes .flash");
    const failed = !resp.ok || flash?.classList.contains("flash-error");
    showError(failed ? (flash?.textContent || "That did not work. Try again.") : "");
    if (!failed) {
      $("deck-note").textContent = flash?.textContent || "Done.";
      if (form.classList.contains("deck-upload")) form.reset();
    }
  } catch {
    showError("The server did not answer. Check your connection and try again.");
  } finally {
    if (button) button.disabled = false;
  }
}

export function initAgenda() {
  // After app.js's listener, which asks "Remove …?" first (data-confirm) and cancels on "No".
  document.addEventListener("submit", (e) => {
    const form = e.target.closest("form.deck-upload, #deck-list form");
    if (!form || e.defaultPrevented || !inCall()) return;
    e.preventDefault();
    sendInPlace(form);
  });
}

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
