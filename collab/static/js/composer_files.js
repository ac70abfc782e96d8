// The composer's files (issue 14): a styled "Attach files" button, files dropped on the composer or images
// pasted into the text, each checked when it is picked against the server's limits (written into the form:
// data-max-bytes, data-max-files), and sent with a progress bar. A file that is too large or empty is shown
// with the reason beside it and not sent; if the server refuses anyway (rooms/composer_views.py answers
// JSON), the text and the files stay and the reason is shown beside them: never an error page.
import { el } from "./dom.js";

const MB = 1024 * 1024;

export function sizeText(bytes) {
  if (bytes >= MB) return `${(bytes / MB).toFixed(bytes >= 10 * MB ? 0 : 1)} MB`;
  return `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

/**
 * Enhance the file field of `form`. `done(url)` runs when the server has the post (the draft is cleared
 * there); `status(text)` writes the composer's status line. Returns nothing; does nothing without a field.
 */
export function initFiles(form, { done, status }) {
  const input = form.querySelector("input[type=file][name=file]");
  if (!input) return;
  const limit = (name) => Number(form.dataset[name]) || Infinity; // read when needed: the page's current limits
  const label = form.querySelector(`label[for="${input.id}"]`);
  const picked = []; // {file, error}
  const required = input.required; // (a hidden field cannot be "required": the browser could not point at it)
  input.required = false;
  input.hidden = true;
  if (label) label.hidden = true;
  const list = el("ul", { class: "file-list", id: `${input.id}-list`, "aria-label": "Files to attach" });
  const note = el("p", { class: "file-note field-error", id: `${input.id}-note`, role: "alert" });
  const button = el("button", { type: "button", class: "small attach-button", "aria-describedby": `${input.id}-limits`,
    text: "Attach files", onclick: () => input.click() });
  const limits = el("span", { class: "hint", id: `${input.id}-limits`,
    text: `Up to ${sizeText(limit("maxBytes"))} each, ${limit("maxFiles")} at most. You can also drop files here or paste an image.` });
  const progress = el("progress", { max: "100", value: "0", hidden: true, "aria-label": "Upload progress" });
  const area = el("div", { class: "file-area" }, el("div", { class: "file-pick" }, button, limits), list, note, progress);
  input.after(area);

  function sync() {
    const dt = new DataTransfer();
    for (const p of picked) if (!p.error) dt.items.add(p.file);
    input.files = dt.files;
    list.replaceChildren(...picked.map((p, i) => el("li", { class: p.error ? "file refused" : "file" },
      el("span", { class: "file-name", text: p.file.name }), " ",
      el("span", { class: "hint", text: `(${sizeText(p.file.size)})` }),
      p.error ? el("span", { class: "field-error", text: ` ${p.error}` }) : null, " ",
      el("button", { type: "button", class: "small", "aria-label": `Remove ${p.file.name}`, text: "Remove",
        onclick: () => { picked.splice(i, 1); sync(); note.textContent = ""; button.focus(); } }))));
  }

  function check(file) {
    const maxBytes = limit("maxBytes");
    const maxFiles = limit("maxFiles");
    if (file.size > maxBytes) return `Too large: files can be at most ${sizeText(maxBytes)}. Remove it to send.`;
    if (file.size === 0) return "This file is empty (or a folder). Remove it to send.";
    if (picked.filter((p) => !p.error).length >= maxFiles) return `At most ${maxFiles} files can be attached to one post. Remove it to send.`;
    return null;
  }

  function add(files) {
    for (const file of files) picked.push({ file, error: check(file) });
    note.textContent = "";
    sync();
    const refused = picked.filter((p) => p.error).length;
    status(refused ? `${refused === 1 ? "A file" : `${refused} files`} cannot be attached: see the reason beside ${refused === 1 ? "it" : "them"}.` : "");
  }

  input.addEventListener("change", () => {
    const chosen = [...input.files];
    if (chosen.length) add(chosen);
  });
  form.addEventListener("dragover", (ev) => {
    if (![...ev.dataTransfer.types].includes("Files")) return;
    ev.preventDefault();
    form.classList.add("dragging");
  });
  form.addEventListener("dragleave", (ev) => { if (!form.contains(ev.relatedTarget)) form.classList.remove("dragging"); });
  form.addEventListener("drop", (ev) => {
    if (!ev.dataTransfer.files.length) return;
    ev.preventDefault();
    form.classList.remove("dragging");
    add(ev.dataTransfer.files);
  });
  form.querySelector("textarea")?.addEventListener("paste", (ev) => {
    const files = [...(ev.clipboardData?.files || [])];
    if (!files.length || ev.clipboardData.types.includes("text/plain")) return;
    ev.preventDefault();
    const stamp = new Date().toISOString().slice(0, 19).replace(/[T:]/g, "-");
    add(files.map((f, i) => new File([f], f.name && f.name !== "image.png" ? f.name : `pasted-${stamp}${i ? `-${i}` : ""}.${(f.type.split("/")[1] || "png")}`, { type: f.type })));
  });

  // With files, the form is sent here (not by the page or the live outbox) to show progress and keep the page.
  form.addEventListener("submit", (ev) => {
    if (ev.defaultPrevented) return;
    const refused = picked.filter((p) => p.error);
    if (refused.length) { // never a post without the file its text may speak of
      ev.preventDefault();
      note.textContent = `Not sent: ${refused.map((p) => p.file.name).join(", ")} cannot be attached (the reason is beside it). Remove it to send.`;
      list.querySelector(".refused button")?.focus();
      return;
    }
    if (!input.files.length) {
      if (required) { ev.preventDefault(); note.textContent = "Choose a file to attach first."; button.focus(); }
      return;
    }
    ev.preventDefault();
    const submit = form.querySelector("button[type=submit]");
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.setRequestHeader("Accept", "application/json");
    progress.hidden = false;
    progress.value = 0;
    submit.disabled = true;
    status("Sending your files: 0%");
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      progress.value = Math.round((100 * e.loaded) / e.total);
      status(`Sending your files: ${progress.value}%`);
    });
    const refuse = (message) => {
      progress.hidden = true;
      submit.disabled = false;
      status("Not sent: your text and files are still here.");
      note.textContent = message;
    };
    xhr.addEventListener("load", () => {
      let data = null;
      try { data = JSON.parse(xhr.responseText); } catch { /* an answer that is not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300 && data && data.url) { status("Sent."); done(data.url); return; }
      refuse(data && data.error ? data.error.message : `The server refused the post (error ${xhr.status}).`);
    });
    xhr.addEventListener("error", () => refuse("The upload did not finish: check the connection and send again."));
    xhr.send(new FormData(form));
  });
}
