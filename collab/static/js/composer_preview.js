// The composer's Write and Preview tabs (issue 14). Preview asks the server to render the text (POST /preview,
// rooms/composer_views.py) with the function that renders a post when it is saved, so it shows exactly what
// will be posted, sanitised the same way. WAI-ARIA tabs: arrow keys switch, the panel follows at once.
import { csrfToken } from "./csrf.js";
import { el } from "./dom.js";

async function render(ta, panel) {
  if (!ta.value.trim()) {
    panel.replaceChildren(el("p", { class: "hint", text: "Nothing to preview yet: write something first." }));
    return;
  }
  panel.replaceChildren(el("p", { class: "hint", text: "Preparing the preview…" }));
  panel.setAttribute("aria-busy", "true");
  try {
    const body = new FormData();
    body.append("body", ta.value);
    const resp = await fetch("/preview", {
      method: "POST", body, headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
    });
    const data = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(data.error ? data.error.message : `The preview failed (${resp.status}).`);
    const out = el("div", { class: "post-body" });
    out.innerHTML = data.html; // sanitised on the server (nh3), exactly as the post will be
    panel.replaceChildren(out);
  } catch (err) {
    panel.replaceChildren(el("p", { class: "field-error", text: err.message || "The preview could not be made." }));
  } finally {
    panel.removeAttribute("aria-busy");
  }
}

/**
 * Write and Preview tabs around the composer's label, hint, toolbar and text box (`parts`, in page order,
 * the text box last).
 */
export function initPreview(form, ta, parts) {
  const base = ta.id;
  const write = el("div", { id: `${base}-write`, role: "tabpanel", class: "composer-write stack", "aria-labelledby": `${base}-tab-write` });
  const preview = el("div", { id: `${base}-preview`, role: "tabpanel", class: "composer-preview", tabindex: "0",
    "aria-labelledby": `${base}-tab-preview`, hidden: true });
  const tabs = [
    el("button", { type: "button", role: "tab", id: `${base}-tab-write`, "aria-controls": write.id, "aria-selected": "true", text: "Write" }),
    el("button", { type: "button", role: "tab", id: `${base}-tab-preview`, "aria-controls": preview.id, "aria-selected": "false", tabindex: "-1", text: "Preview" }),
  ];
  const list = el("div", { role: "tablist", class: "composer-tabs", "aria-label": "Write or preview" }, ...tabs);
  parts[0].before(list);
  list.after(write, preview);
  write.append(...parts);

  function select(i, focus) {
    tabs.forEach((t, j) => {
      t.setAttribute("aria-selected", String(i === j));
      t.tabIndex = i === j ? 0 : -1;
    });
    write.hidden = i !== 0;
    preview.hidden = i !== 1;
    if (i === 1) render(ta, preview);
    if (focus) tabs[i].focus();
  }
  tabs.forEach((t, i) => t.addEventListener("click", () => select(i, true)));
  list.addEventListener("keydown", (ev) => {
    const i = tabs.indexOf(document.activeElement);
    const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: 1 }[ev.key];
    if (to === undefined || i < 0) return;
    ev.preventDefault();
    select((to + 2) % 2, true);
  });
  // After sending, or when the text is changed elsewhere (a draft restored), the composer shows the text again.
  form.addEventListener("composer:write", () => select(0, false));
}
