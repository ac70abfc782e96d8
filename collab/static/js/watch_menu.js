// The "Notifications" menus of room and thread pages (templates/rooms/_watch_menu.html): a disclosure
// (<details>) holding one button per watch level. Native details already open and close by keyboard;
// this adds what a menu button does too: Escape closes it and gives focus back to its button, and a
// click or focus elsewhere closes it. Choosing a level is an ordinary form post (it works without this).
export function initMenus(root = document) {
  const menus = [...root.querySelectorAll("details[data-menu]")];
  if (!menus.length) return;
  const closeAll = (except) => { for (const m of menus) if (m !== except && m.open) m.open = false; };
  for (const menu of menus) {
    menu.addEventListener("toggle", () => {
      if (!menu.open) return;
      closeAll(menu);
      (menu.querySelector('[aria-pressed="true"]') || menu.querySelector("button"))?.focus();
    });
    menu.addEventListener("keydown", (ev) => {
      if (ev.key !== "Escape" || !menu.open) return;
      ev.preventDefault();
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  }
  document.addEventListener("click", (ev) => { closeAll(ev.target.closest?.("details[data-menu]")); });
  document.addEventListener("focusin", (ev) => { closeAll(ev.target.closest?.("details[data-menu]")); });
}
