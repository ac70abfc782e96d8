// The people picker (issue 14): type the start of a name, choose from the list. The ARIA 1.2 combobox
// pattern (an input with a listbox popup, aria-activedescendant for the highlighted option), driven by
// keyboard (Down/Up, Enter, Escape) or pointer. The server decides who may be offered
// (rooms/people.py, GET /rooms/<id>/people.json).
//
// Two forms, both enhancing markup that works without script:
// - single (the members page): `[data-people-picker]` wraps a text input (an e-mail address without
//   script) and a hidden `user_id`; choosing a person fills the hidden field, typing again clears it.
// - multiple (meeting chairs, invitees): `[data-people-picker][data-multiple]` names a list of
//   checkboxes (`data-checkboxes`, a selector); the picker ticks them, shows the chosen people with a
//   Remove button each, and hides the long list.
import { el } from "./dom.js";
import { announce } from "./live_regions.js";

let counter = 0;

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function optionText(p) {
  return [p.name, p.job_title, p.organisation].filter(Boolean).join(" · ");
}

export function initPeoplePickers(root = document) {
  for (const box of root.querySelectorAll("[data-people-picker]")) setUp(box);
}

function setUp(box) {
  if (box.dataset.ready) return;
  box.dataset.ready = "1";
  const n = ++counter;
  const multiple = box.hasAttribute("data-multiple");
  const checkboxes = multiple ? document.querySelector(box.dataset.checkboxes) : null;
  let input = box.querySelector("input[data-picker-input]");
  const hidden = box.querySelector("input[data-picker-value]");
  if (multiple) {
    if (!checkboxes) return;
    const id = `picker-${n}`;
    input = el("input", { id, type: "text", autocomplete: "off", spellcheck: "false", class: "picker-input" });
    box.append(el("label", { for: id, class: "picker-label", text: box.dataset.label || "Add a person" }), input);
  }
  const list = el("ul", { id: `picker-${n}-list`, role: "listbox", class: "picker-list", hidden: true,
                          "aria-label": box.dataset.listLabel || "Matching people" });
  const status = el("p", { class: "hint picker-status", id: `picker-${n}-status` });
  input.after(list);
  list.after(status);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-describedby", [input.getAttribute("aria-describedby"), status.id].filter(Boolean).join(" "));

  let chosenList = null;
  if (multiple) {
    chosenList = el("ul", { class: "picked", "aria-label": box.dataset.chosenLabel || "Chosen" });
    box.prepend(chosenList);
    checkboxes.hidden = true;
    renderChosen();
  }

  let options = [];
  let active = -1;

  function close() {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function highlight(i) {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute("aria-selected", j === i ? "true" : "false"));
    if (i >= 0 && list.children[i]) {
      input.setAttribute("aria-activedescendant", list.children[i].id);
      list.children[i].scrollIntoView({ block: "nearest" });
    } else input.removeAttribute("aria-activedescendant");
  }

  function isChosen(p) {
    if (multiple) return checkboxes.querySelector(`input[value="${p.id}"]`)?.checked;
    return false;
  }

  function show(people, hiddenNames) {
    options = people;
    list.replaceChildren();
    people.forEach((p, i) => {
      const already = isChosen(p) || (!multiple && p.role);
      const note = already ? (multiple ? " (chosen)" : ` (already ${p.role})`) : "";
      list.append(el("li", { id: `picker-${n}-opt-${i}`, role: "option", "aria-selected": "false",
                             "aria-disabled": already ? "true" : null, class: "picker-option",
                             onmousedown: (ev) => { ev.preventDefault(); choose(i); } },
                     el("span", { class: "picker-name", text: p.name }),
                     el("span", { class: "hint", text: optionText(p).slice(p.name.length) + note })));
    });
    const open = people.length > 0;
    list.hidden = !open;
    input.setAttribute("aria-expanded", open ? "true" : "false");
    highlight(-1);
    let msg;
    if (hiddenNames) msg = "This room is non-attributed: names are not shown.";
    else if (!input.value.trim()) msg = "";
    else if (!people.length) msg = input.value.includes("@") ? "No one of that name: the address will be used." : "No one found with that name.";
    else msg = `${people.length} ${people.length === 1 ? "person" : "people"} found: use the arrow keys to choose.`;
    status.textContent = msg;
    if (msg) announce(msg);
  }

  const search = debounce(async () => {
    const q = input.value.trim();
    if (!q || (q.includes("@") && !multiple)) { show([], false); return; }
    const url = new URL(box.dataset.source, location.href);
    url.searchParams.set("q", q);
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.status === 429) { status.textContent = "Too many look-ups: wait a minute and type again."; return; }
      if (!resp.ok) { status.textContent = "Could not look people up just now."; return; }
      const data = await resp.json();
      if (input.value.trim() === q) show(data.people || [], data.hidden);
    } catch {
      status.textContent = "Could not look people up just now.";
    }
  }, 200);

  function choose(i) {
    const p = options[i];
    if (!p) return;
    const li = list.children[i];
    if (li?.getAttribute("aria-disabled") === "true") return;
    if (multiple) {
      const cb = checkboxes.querySelector(`input[value="${p.id}"]`);
      if (cb) cb.checked = true;
      input.value = "";
      renderChosen();
      announce(`${p.name} added.`);
    } else {
      hidden.value = String(p.id);
      input.value = p.name;
      status.textContent = `${p.name} chosen.`;
      announce(`${p.name} chosen.`);
    }
    close();
    input.focus();
  }

  function renderChosen() {
    chosenList.replaceChildren();
    for (const cb of checkboxes.querySelectorAll("input[type=checkbox]:checked")) {
      const name = checkboxes.querySelector(`label[for="${cb.id}"]`)?.textContent.trim() || cb.value;
      chosenList.append(el("li", { class: "chip" }, el("span", { text: name }),
        el("button", { type: "button", class: "small", "aria-label": `Remove ${name}`, text: "Remove",
                       onclick: () => { cb.checked = false; renderChosen(); announce(`${name} removed.`); input.focus(); } })));
    }
    chosenList.hidden = !chosenList.children.length;
  }

  input.addEventListener("input", () => {
    if (hidden) hidden.value = "";
    search();
  });
  input.addEventListener("keydown", (ev) => {
    const open = !list.hidden && options.length;
    if (ev.key === "ArrowDown") {
      ev.preventDefault();
      if (!open) { search(); return; }
      highlight((active + 1) % options.length);
    } else if (ev.key === "ArrowUp") {
      ev.preventDefault();
      if (open) highlight(active <= 0 ? options.length - 1 : active - 1);
    } else if (ev.key === "Enter" && open && active >= 0) {
      ev.preventDefault();
      choose(active);
    } else if (ev.key === "Escape" && !list.hidden) {
      ev.preventDefault();
      close();
    }
  });
  input.addEventListener("blur", () => setTimeout(close, 150));
}
