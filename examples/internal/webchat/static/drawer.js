// The member list as a drawer on phones (style.css shows it so below 761
// px): its toggle opens and closes it, and so do Escape, a tap or click
// outside it and its own close button. Closing gives the focus back to the
// toggle, and the toggle's aria-expanded always says whether it is open.
export function memberDrawer(toggle, panel, closeButton) {
  const isOpen = () => panel.classList.contains("open");
  const set = (open, refocus) => {
    panel.classList.toggle("open", open);
    toggle.setAttribute("aria-expanded", String(open));
    if (open) closeButton.focus();
    else if (refocus) toggle.focus();
  };
  toggle.addEventListener("click", () => set(!isOpen(), true));
  closeButton.addEventListener("click", () => set(false, true));
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && isOpen()) {
      e.preventDefault();
      set(false, true);
    }
  });
  // pointerdown, before the click lands: a tap outside closes the drawer
  // and still does what it was for (scroll, focus the composer).
  document.addEventListener("pointerdown", (e) => {
    if (isOpen() && !panel.contains(e.target) && !toggle.contains(e.target)) set(false, false);
  });
  return { close: () => set(false, false) };
}
