// "Are you sure? This is what will happen": a form marked data-opens-dialog="<id>" opens that
// server-rendered <dialog> instead of being sent (its own form does the deed; without script the
// server answers the unconfirmed form with the same question on a page of its own). The dialog is
// modal, so Tab stays inside it; focus starts on the choice that changes nothing, and Escape or that
// choice closes it and gives focus back to the button that opened it.
export function initConfirmDialogs() {
  document.addEventListener("submit", (ev) => {
    const form = ev.target.closest?.("form[data-opens-dialog]");
    const dialog = form && document.getElementById(form.dataset.opensDialog);
    if (!dialog || typeof dialog.showModal !== "function") return;
    ev.preventDefault();
    const opener = ev.submitter || form.querySelector("button");
    dialog.showModal();
    (dialog.querySelector("[data-close-dialog]") || dialog.querySelector("button"))?.focus();
    dialog.addEventListener("close", () => opener?.focus(), { once: true });
  });
  document.addEventListener("click", (ev) => {
    const close = ev.target.closest?.("[data-close-dialog]");
    if (close) close.closest("dialog")?.close();
  });
}
