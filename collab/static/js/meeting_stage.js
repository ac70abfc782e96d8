// The stage: the presented slide when a deck is presented (images that follow the presenter,
// never video), else in the call a shared screen, else the person speaking. Before joining (and
// for someone paging through the pre-reads) it shows the slides. Anyone may browse on their own
// and press "Follow presenter" to come back; the chair or the named presenter moves them for all.
import { byId as $ } from "./dom.js";
import { ctx, inCall, personRef, send, setText } from "./meeting_hybrid.js";

const NO_SLIDES = "Slides are not shown to guests in OFFICIAL-SENSITIVE rooms.";
const view = { following: true, deckId: null, page: 1 };
let lastSpeaker = null;
// Each deck's slide titles (deck id -> array, [] when it has none), asked for once per deck and only
// where slides may be shown: they are text of the deck, served like its images (titles.json).
const titles = new Map();

/** The titles of a deck, or undefined while they are being fetched (the slides render again then). */
function titlesOf(deckId) {
  if (titles.has(deckId)) return titles.get(deckId);
  titles.set(deckId, undefined);
  fetch(`${ctx.slidesBase}${deckId}/titles.json`, { credentials: "same-origin", headers: { Accept: "application/json" } })
    .then((r) => (r.ok ? r.json() : { titles: [] }))
    .then((body) => Array.isArray(body?.titles) ? body.titles : [], () => [])
    .then((list) => { titles.set(deckId, list); renderSlides(); });
  return undefined;
}

/** "Slide 2 of 3: What the IAG asked for (deck.pdf)", without the title where the slide has none. */
function slideLabel(deck, page, list) {
  const title = typeof list?.[page - 1] === "string" ? list[page - 1].trim() : "";
  return `Slide ${page} of ${deck.pages}${title ? `: ${title}` : ""} (${deck.filename})`;
}

function deckById(id) {
  return ctx.snap?.decks.find((d) => d.id === id && d.status === "ready") || null;
}

/** The deck and page this page shows: the presenter's, one browsed, or the first ready deck. */
function shown() {
  const snap = ctx.snap;
  if (view.following && snap?.deck_id && deckById(snap.deck_id)) return { deckId: snap.deck_id, page: snap.page };
  if (view.deckId && deckById(view.deckId)) return { deckId: view.deckId, page: view.page };
  const first = snap?.decks.find((d) => d.status === "ready");
  return first ? { deckId: first.id, page: 1 } : null;
}

/** Whether the stage shows slides rather than a person: always outside the call; in it, when a
 * deck is presented or this person is browsing one. */
function slidesOnStage() {
  if (!inCall()) return true;
  if (!view.following && view.deckId && deckById(view.deckId)) return true;
  return !!(ctx.snap?.deck_id && deckById(ctx.snap.deck_id));
}

export function renderSlides() {
  const snap = ctx.snap;
  if (!snap) return;
  const s = shown();
  const img = $("slide-img");
  const follow = $("slide-follow");
  const presenting = ctx.me.presenter && !ctx.ended;
  follow.setAttribute("aria-pressed", String(view.following));
  follow.textContent = view.following ? "Following presenter" : "Follow presenter";
  follow.hidden = presenting || (view.following && !snap.deck_id);
  const who = snap.presenter ? snap.presenter.name : (snap.chairs.map((c) => c.name).join(", ") || "the chair");
  setText($("slide-who"), presenting ? "You can move the slides for everyone." : `Slides are presented by ${who}.`);
  const select = $("slide-deck");
  const ready = snap.decks.filter((d) => d.status === "ready");
  const current = select.value;
  select.replaceChildren(...ready.map((d) => new Option(d.filename, String(d.id))));
  if (current && ready.some((d) => String(d.id) === current)) select.value = current;
  select.hidden = ready.length < 2;
  if (!s) {
    img.hidden = true;
    setText($("slide-number"), "–");
    const preparing = snap.decks.some((d) => d.status === "queued" || d.status === "converting");
    setText($("slide-status"), preparing ? "The slides are being prepared." : "No slides to show yet.");
    ["slide-prev", "slide-next"].forEach((id) => { $(id).disabled = true; });
    stage();
    return;
  }
  const deck = deckById(s.deckId);
  select.value = String(s.deckId);
  setText($("slide-number"), `Slide ${s.page} of ${deck.pages}`);
  if (ctx.noFiles) {   // the deck and slide number only: no image is asked for
    img.hidden = true;
    img.removeAttribute("src");
    setText($("slide-status"), NO_SLIDES);
    ["slide-prev", "slide-next"].forEach((id) => { $(id).disabled = true; });
    stage();
    return;
  }
  const src = `${ctx.slidesBase}${s.deckId}/pages/${s.page}.png`;
  if (img.getAttribute("src") !== src) img.setAttribute("src", src);
  img.hidden = false;
  const list = titlesOf(s.deckId);
  const label = slideLabel(deck, s.page, list);
  img.alt = label;
  img.dataset.deckId = String(s.deckId);
  img.dataset.page = String(s.page);
  $("slide-prev").disabled = s.page <= 1;
  $("slide-next").disabled = s.page >= deck.pages;
  if (s.page < deck.pages) new Image().src = `${ctx.slidesBase}${s.deckId}/pages/${s.page + 1}.png`; // preload
  // What is on screen with its title, said whenever it changes (never "being prepared" while a slide
  // shows). While the deck's titles are on their way nothing is said, so the slide is announced once.
  const presented = snap.deck_id === s.deckId && snap.page === s.page;
  let status = `${label}.`;
  if (!view.following && snap.deck_id) {
    status = `You are browsing on your own: ${label}; the presenter is on slide ${snap.page}. Press “Follow presenter” to go back.`;
  } else if (presented && !presenting) {
    status = `${label}, following the presenter.`;
  }
  setText($("slide-status"), list === undefined ? "" : status);
  stage();
}

function browse(deckId, page) {
  view.following = false;
  view.deckId = deckId;
  view.page = page;
  renderSlides();
}

/** "Page through" a deck from the papers: show it on the stage from its first page. */
export function pageThrough(deckId) {
  browse(deckId, 1);
  $("slide-img").closest("figure").scrollIntoView?.({ block: "nearest" });
  $("slide-next").focus();
}

/** The presenter puts a deck on everyone's stage, from its first page. */
export function present(deckId) {
  view.following = true;
  view.deckId = null;
  ctx.snap = { ...ctx.snap, deck_id: deckId, page: 1 }; // shown at once; the server's state confirms it
  renderSlides();
  send("meeting_slide", { deck_id: deckId, page: 1 });
  $("slide-next").focus();
}

function step(delta) {
  const s = shown();
  if (!s) return;
  const deck = deckById(s.deckId);
  const page = Math.min(Math.max(1, s.page + delta), deck.pages);
  if (page === s.page) return;
  if (ctx.me.presenter && !ctx.ended) {
    view.following = true;
    ctx.snap = { ...ctx.snap, deck_id: s.deckId, page }; // shown at once; the server's state confirms it
    renderSlides();
    send("meeting_slide", { deck_id: s.deckId, page });
  } else {
    browse(s.deckId, page);
  }
}

// -- a person on the stage ---------------------------------------------------------------------

/** The tile to put on the stage in the call: a shared screen, else who speaks (or spoke last),
 * else someone pinned, else the first other person, else oneself. */
function stagedTile() {
  const grid = $("grid");
  const screen = grid.querySelector(".tile-screen");
  if (screen) return screen;
  const me = $("meeting").dataset.meId;   // never oneself while someone else is there
  const speaking = grid.querySelector(`.tile.speaking[data-participant-id]:not([data-participant-id="${me}"])`);
  if (speaking) lastSpeaker = speaking.dataset.participantId;
  return (lastSpeaker && grid.querySelector(`.tile[data-participant-id="${lastSpeaker}"]`))
    || grid.querySelector('.tile-pin[aria-pressed="true"]')?.closest(".tile")
    || [...grid.querySelectorAll(".tile[data-participant-id]")].find((t) => t.dataset.participantId !== me)
    || grid.querySelector(".tile[data-participant-id]");
}

/** Puts the slides or a person on the stage (called on every change of state or tiles). */
export function stage() {
  const slides = slidesOnStage();
  $("stage-slides").hidden = !slides;
  const person = $("stage-person");
  const meeting = $("meeting");
  meeting.classList.toggle("stage-slides-on", slides);
  for (const t of document.querySelectorAll("#grid .on-stage")) t.classList.remove("on-stage");
  if (slides || !$("grid")) {
    person.hidden = true;
    $("stage-video").srcObject = null;
    setText($("stage-h"), "Slides");
    return;
  }
  const tile = stagedTile();
  person.hidden = !tile;
  if (!tile) return;
  tile.classList.add("on-stage");
  const video = tile.querySelector("video");
  const stream = tile.classList.contains("no-video") ? null : video.srcObject;
  const sv = $("stage-video");
  if (sv.srcObject !== stream) {
    sv.srcObject = stream;
    if (stream) sv.play().catch(() => {});
  }
  person.classList.toggle("no-video", !stream);
  setText($("stage-initials"), tile.querySelector(".tile-initials").textContent);
  const name = tile.querySelector(".tile-name").textContent;
  const what = tile.classList.contains("tile-screen") ? name : (tile.classList.contains("speaking") ? `${name}, speaking` : name);
  setText($("stage-label"), what);
  setText($("stage-h"), tile.classList.contains("tile-screen") ? "Shared screen" : "Speaker");
}

let pending = false;
function stageSoon() {
  if (pending) return;
  pending = true;
  setTimeout(() => { pending = false; stage(); }, 0);
}

export function initStage() {
  $("slide-prev").addEventListener("click", () => step(-1));
  $("slide-next").addEventListener("click", () => step(1));
  $("slide-follow").addEventListener("click", () => {
    view.following = true;
    view.deckId = null;
    renderSlides();
  });
  $("slide-deck").addEventListener("change", (e) => {
    const id = Number(e.target.value);
    if (ctx.me.presenter && !ctx.ended) {
      view.following = true;
      send("meeting_slide", { deck_id: id, page: 1 });
    } else browse(id, 1);
  });
  $("take-over")?.addEventListener("click", () => send("meeting_presenter", { user_id: ctx.me.id }));
  $("presenter-select")?.addEventListener("change", (e) => send("meeting_presenter", e.target.value ? personRef(e.target.value) : { user_id: null }));
  document.addEventListener("keydown", (e) => {
    if (!e.altKey || !e.shiftKey) return;
    if (e.key === "ArrowLeft") { e.preventDefault(); step(-1); }
    if (e.key === "ArrowRight") { e.preventDefault(); step(1); }
  });
  // The tiles change (meeting_tiles.js says so), or the call starts or ends: the stage follows.
  document.addEventListener("meeting:tiles", stageSoon);
  const call = $("call");
  if (call) new MutationObserver(stageSoon).observe(call, { attributes: true, attributeFilter: ["hidden"] });
}
