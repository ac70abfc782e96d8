// Drafts of posts kept in localStorage until the server has the post, and the client id that
// makes sending a post idempotent. Used by composer.js (typing, the ordinary form) and live.js
// (sending over the socket); both must read and write the same entries.
const DRAFT_PREFIX = "collab-draft:";

/** A new client id for a post (the server answers a repeated one with the first post). */
export function newClientId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random().toString(36).slice(2)}`);
}

/** The localStorage key of the draft named `name` (a composer's data-draft-key). */
export function draftStorageKey(name) {
  return DRAFT_PREFIX + name;
}

/** The draft {body, clientId} named `name`, or null when there is none (or it is unreadable). */
export function readDraft(name) {
  try { return JSON.parse(localStorage.getItem(draftStorageKey(name)) || "null"); } catch { return null; }
}

export function saveDraft(name, body, clientId) {
  localStorage.setItem(draftStorageKey(name), JSON.stringify({ body, clientId }));
}

export function forgetDraft(name) {
  localStorage.removeItem(draftStorageKey(name));
}
