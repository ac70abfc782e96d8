// Formatting for people who have never heard of Markdown (issue 14): a toolbar above the text box (bold,
// italic, link, bulleted and numbered list, quote, heading) with keyboard shortcuts, and lists that carry on
// when Enter is pressed. Each button writes the Markdown the server renders, so what they see in Preview
// (composer_preview.js) is what is posted. A WAI-ARIA toolbar: one Tab stop, arrow keys move between buttons;
// on a phone one row, the less used buttons behind "More formatting", as in Discourse's phone composer.
import { el } from "./dom.js";

// `short`: the label shown on a phone, where the toolbar has one row (the accessible name stays `label`, which
// contains it). `more`: put behind "More formatting" on a phone (styles in app.css, under .format-bar).
const TOOLS = [
  { name: "bold", label: "Bold", keys: "Control+B", hint: "Ctrl+B", run: (ta) => wrap(ta, "**", "bold text") },
  { name: "italic", label: "Italic", keys: "Control+I", hint: "Ctrl+I", run: (ta) => wrap(ta, "*", "italic text") },
  { name: "link", label: "Link", keys: "Control+K", hint: "Ctrl+K", run: (ta, form) => openLinkField(ta, form) },
  { name: "bullets", label: "Bulleted list", short: "List", keys: "Control+Shift+8", hint: "Ctrl+Shift+8", run: (ta) => prefixLines(ta, () => "- ", /^\s*[-*+] /) },
  { name: "numbers", label: "Numbered list", short: "List", more: true, keys: "Control+Shift+7", hint: "Ctrl+Shift+7", run: (ta) => prefixLines(ta, (i) => `${i + 1}. `, /^\s*\d+\. /) },
  { name: "quote", label: "Quote", more: true, keys: "Control+Shift+Period", hint: "Ctrl+Shift+.", run: (ta) => prefixLines(ta, () => "> ", /^> ?/) },
  { name: "heading", label: "Heading", more: true, keys: "Control+Shift+H", hint: "Ctrl+Shift+H", run: (ta) => prefixLines(ta, () => "## ", /^#{1,6} /) },
];
// The shortcut of each tool, by KeyboardEvent.code (the same key whatever the layout's shifted character).
const SHORTCUTS = { KeyB: "bold", KeyI: "italic", KeyK: "link", "Shift+Digit8": "bullets", "Shift+Digit7": "numbers",
  "Shift+Period": "quote", "Shift+KeyH": "heading" };

/** Put `text` in place of start..end as typing would (so Undo works and "input" fires), then select. */
function replace(ta, start, end, text, selStart, selEnd) {
  ta.focus();
  ta.setSelectionRange(start, end);
  if (!document.execCommand("insertText", false, text)) {
    ta.setRangeText(text, start, end, "end");
    ta.dispatchEvent(new Event("input", { bubbles: true }));
  }
  ta.setSelectionRange(selStart, selEnd);
}

/** Bold or italic: around the selection (or a placeholder, selected so typing replaces it); again undoes it. */
function wrap(ta, mark, placeholder) {
  const { selectionStart: s, selectionEnd: e, value } = ta;
  const n = mark.length;
  if (s >= n && value.slice(s - n, s) === mark && value.slice(e, e + n) === mark) {
    replace(ta, s - n, e + n, value.slice(s, e), s - n, e - n);
    return;
  }
  const inner = value.slice(s, e) || placeholder;
  replace(ta, s, e, `${mark}${inner}${mark}`, s + n, s + n + inner.length);
}

/** Lists, quotes, headings: a prefix on every line of the selection (removed if they all have it). A blank
 *  line is put before the block when the line above has text, as Markdown needs one. */
function prefixLines(ta, prefix, has) {
  const { selectionStart: s, selectionEnd: e, value } = ta;
  const from = value.lastIndexOf("\n", s - 1) + 1;
  let to = value.indexOf("\n", e > s && value[e - 1] === "\n" ? e - 1 : e);
  if (to < 0) to = value.length;
  const lines = value.slice(from, to).split("\n");
  let text;
  if (lines.every((l) => has.test(l))) {
    text = lines.map((l) => l.replace(has, "")).join("\n");
  } else {
    text = lines.map((l, i) => prefix(i) + l.replace(has, "")).join("\n");
    const above = value.slice(0, from).replace(/\n$/, "").split("\n").pop();
    if (from > 0 && above.trim() && !has.test(above)) text = `\n${text}`;
  }
  replace(ta, from, to, text, from + text.length, from + text.length);
}

/** Enter at the end of a list item starts the next one; Enter on an empty item ends the list. */
function continueList(ta, ev) {
  const { selectionStart: s, selectionEnd: e, value } = ta;
  if (s !== e) return;
  const from = value.lastIndexOf("\n", s - 1) + 1;
  const line = value.slice(from, s);
  const m = /^(\s*)([-*+]|(\d+)\.) (.*)$/.exec(line);
  if (!m || value.slice(s, s + 1).trim()) return;
  ev.preventDefault();
  if (!m[4].trim()) { replace(ta, from, s, "\n", from + 1, from + 1); return; } // the list ends: a blank line after it
  const next = m[3] ? `${Number(m[3]) + 1}.` : m[2];
  const add = `\n${m[1]}${next} `;
  replace(ta, s, s, add, s + add.length, s + add.length);
}

/** The link field: the address (and the words to show, the selection by default), added as a Markdown link. */
function openLinkField(ta, form) {
  form.querySelector(".link-field")?.remove();
  const { selectionStart: s, selectionEnd: e } = ta;
  const words = ta.value.slice(s, e);
  const id = `${ta.id}-link`;
  const url = el("input", { id: `${id}-url`, type: "url", inputmode: "url", placeholder: "https://", autocomplete: "url" });
  const text = el("input", { id: `${id}-text`, type: "text", value: words });
  const done = (add) => {
    box.remove();
    if (!add) { ta.focus(); ta.setSelectionRange(s, e); return; }
    let href = url.value.trim();
    if (href && !/^(https?:|mailto:)/i.test(href)) href = href.includes("@") && !href.includes("/") ? `mailto:${href}` : `https://${href}`;
    const shown = text.value.trim() || href;
    if (!href) { ta.focus(); return; }
    const md = `[${shown.replace(/[[\]]/g, "\\$&")}](${href.replace(/[()\s]/g, encodeURIComponent)})`;
    replace(ta, s, e, md, s + md.length, s + md.length);
  };
  const box = el("div", { class: "link-field", role: "group", "aria-label": "Add a link" },
    el("label", { for: url.id, text: "Link address" }), url,
    el("label", { for: text.id, text: "Words to show (optional)" }), text,
    el("div", { class: "actions" },
      el("button", { type: "button", class: "small primary", text: "Add link", onclick: () => done(true) }),
      el("button", { type: "button", class: "small", text: "Cancel", onclick: () => done(false) })));
  box.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && ev.target.tagName === "INPUT") { ev.preventDefault(); done(true); }
    else if (ev.key === "Escape") { ev.preventDefault(); ev.stopPropagation(); done(false); }
  });
  ta.before(box);
  url.focus();
}

/** The tool's button: its full label, and on a phone its short one (CSS shows one of the two). */
function toolButton(t, ta, form) {
  const text = t.short
    ? [el("span", { class: "tool-long", text: t.label }), el("span", { class: "tool-short", text: t.short })]
    : [t.label];
  return el("button", {
    type: "button", class: `small tool tool-${t.name}`, tabindex: "-1", "data-tool": t.name,
    "aria-keyshortcuts": t.keys, title: `${t.label} (${t.hint})`, "aria-label": t.short ? t.label : null,
    "data-more": t.more ? "" : null, onclick: () => t.run(ta, form),
  }, ...text);
}

/** The toolbar. On a phone (app.css) the buttons marked `more` wait behind "More formatting" (…), a
 *  disclosure button after the others, so the bar is one row, two when they are shown; on a larger screen
 *  every button shows and "More formatting" does not. One Tab stop: arrow keys, Home and End move along the
 *  buttons that show; Escape puts the extra buttons away again. */
function toolbar(ta, form) {
  const bar = el("div", { class: "format-bar", role: "toolbar", "aria-label": "Formatting", "aria-controls": ta.id });
  const buttons = TOOLS.map((t) => toolButton(t, ta, form));
  const more = el("button", {
    type: "button", class: "small tool tool-more", tabindex: "-1", "aria-expanded": "false",
    "aria-label": "More formatting", title: "More formatting", text: "…",
    onclick: () => setOpen(more.getAttribute("aria-expanded") !== "true"),
  });
  const firstMore = buttons.findIndex((b) => b.hasAttribute("data-more"));
  bar.append(...buttons.slice(0, firstMore), more, ...buttons.slice(firstMore));
  const shown = () => [...bar.querySelectorAll("button")].filter((b) => b.getClientRects().length);
  const rove = (to) => { for (const b of bar.querySelectorAll("button")) b.tabIndex = b === to ? 0 : -1; };
  const setOpen = (open) => {
    more.setAttribute("aria-expanded", String(open));
    bar.classList.toggle("more-open", open);
  };
  rove(buttons[0]);
  bar.addEventListener("keydown", (ev) => {
    const list = shown();
    const i = list.indexOf(document.activeElement);
    if (i < 0) return;
    if (ev.key === "Escape" && more.getAttribute("aria-expanded") === "true") {
      ev.preventDefault();
      ev.stopPropagation();
      setOpen(false);
      rove(more);
      more.focus();
      return;
    }
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: list.length - 1 }[ev.key];
    if (to === undefined) return;
    ev.preventDefault();
    const next = list[(to + list.length) % list.length];
    rove(next);
    next.focus();
  });
  bar.addEventListener("focusin", (ev) => rove(ev.target));
  // Leaving the bar: its Tab stop goes back to the first button, never to one a narrower screen hides.
  bar.addEventListener("focusout", (ev) => { if (!bar.contains(ev.relatedTarget)) rove(buttons[0]); });
  return bar;
}

/** Give the composer's text box a formatting toolbar and its shortcuts. */
export function initFormatting(form, ta) {
  ta.before(toolbar(ta, form));
  ta.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented) return; // the @mention list took it
    if (ev.key === "Enter" && !ev.ctrlKey && !ev.metaKey && !ev.shiftKey && !ev.altKey) { continueList(ta, ev); return; }
    if (!(ev.ctrlKey || ev.metaKey) || ev.altKey) return;
    const name = SHORTCUTS[(ev.shiftKey ? "Shift+" : "") + ev.code];
    const tool = name && TOOLS.find((t) => t.name === name);
    if (!tool) return;
    ev.preventDefault();
    tool.run(ta, form);
  });
}
