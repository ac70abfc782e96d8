// DOM helpers shared by the page scripts. Text always goes in as text (textContent, attribute
// values), never as markup: the one place that sets HTML is live.js, with the server's sanitised post.

/** The element with this id, or null. */
export const byId = (id) => document.getElementById(id);

/**
 * A new element. `attrs`: "class", "text" (its text), "dataset" (an object), "on<event>" (a
 * listener); any other key is an attribute, `true` giving an empty one; null, undefined and
 * false leave the attribute out. `children`: nodes or strings; null, undefined and false are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}
