// The CSRF token of this page (base.html puts it in <meta name="csrf-token"> for signed-in
// people), for the forms the scripts build and the requests they send.
import { el } from "./dom.js";

/** The token, or "" on a page without one (signed out). */
export function csrfToken() {
  return document.querySelector('meta[name="csrf-token"]')?.content || "";
}

/** The hidden field a form built in the page needs to be accepted by the server. */
export function csrfInput() {
  return el("input", { type: "hidden", name: "csrf_token", value: csrfToken() });
}
