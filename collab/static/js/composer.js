// Composer: a client id per post (the server is idempotent on it), Ctrl+Enter to send, drafts kept in
// localStorage until the post is sent (drafts.js), and issue 14's helpers: the formatting toolbar
// (composer_format.js), Write and Preview tabs (composer_preview.js) and files picked, dropped or pasted,
// checked and sent with progress (composer_files.js).
import { initFiles } from "./composer_files.js";
import { initFormatting } from "./composer_format.js";
import { initPreview } from "./composer_preview.js";
import { draftStorageKey, forgetDraft, newClientId, readDraft, saveDraft } from "./drafts.js";

function enhance(form, textarea, name) {
  const statusLine = form.querySelector("[data-composer-status]");
  const status = (text) => { if (statusLine) statusLine.textContent = text; };
  if (textarea) {
    initFormatting(form, textarea);
    const label = form.querySelector(`label[for="${textarea.id}"]`);
    const hint = document.getElementById(`${textarea.id}-hint`);
    const parts = [label, hint, form.querySelector(".format-bar"), textarea].filter(Boolean);
    initPreview(form, textarea, parts);
  }
  initFiles(form, {
    status,
    done: (url) => {
      if (name) forgetDraft(name);
      location.assign(url);
    },
  });
}

export function initComposers(root) {
  for (const form of root.querySelectorAll("form[data-composer]")) {
    if (form.dataset.ready) continue;
    form.dataset.ready = "1";
    const textarea = form.querySelector("textarea[name=body]");
    const cid = form.querySelector("[data-client-id]");
    const name = form.dataset.draftKey || null;
    if (cid && !cid.value) cid.value = newClientId();
    if (name && textarea && !textarea.value) {
      const draft = readDraft(name);
      if (draft) {
        textarea.value = draft.body || "";
        if (cid && draft.clientId) cid.value = draft.clientId;
      }
    }
    enhance(form, textarea, name);
    textarea?.addEventListener("input", () => {
      if (!name) return;
      if (textarea.value) saveDraft(name, textarea.value, cid?.value);
      else forgetDraft(name);
    });
    textarea?.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", (ev) => {
      if (ev.defaultPrevented) return; // sent live (live.js) or with progress (composer_files.js)
      // The server answers a repeated client id with the first post, so a
      // resubmitted draft is never duplicated; the draft goes once the page moves on.
      if (name) sessionStorage.setItem("collab-sent:" + draftStorageKey(name), cid?.value || "");
    });
  }
  // Drafts whose post was accepted (we navigated away after submitting) are cleared.
  for (let i = 0; i < sessionStorage.length; i++) {
    const k = sessionStorage.key(i);
    if (k && k.startsWith("collab-sent:")) {
      const draftKey = k.slice("collab-sent:".length);
      const cidSent = sessionStorage.getItem(k);
      if (document.querySelector(`[data-client-id-shown="${CSS.escape(cidSent)}"]`) || !document.querySelector(".error-summary")) {
        localStorage.removeItem(draftKey);
        sessionStorage.removeItem(k);
      }
    }
  }
}
