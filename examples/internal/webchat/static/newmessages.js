// The "3 new messages ↓" button. Scrolled up, the log does not follow what
// comes in (app.js appends below, out of sight): the button counts the
// messages that came in since, jumps to the newest, and goes away once the
// log is at its bottom, however it got there.

const AT_BOTTOM = 80; // px from the bottom within which the log counts as at its bottom, and follows

// atBottom reports whether the log shows its last lines.
export function atBottom(list) {
  return list.scrollHeight - list.scrollTop - list.clientHeight < AT_BOTTOM;
}

export class NewMessages {
  #list;
  #button;
  #count = 0;

  constructor(list, button) {
    this.#list = list;
    this.#button = button;
    list.addEventListener("scroll", () => {
      if (this.#count && atBottom(list)) this.clear();
    }, { passive: true });
    button.addEventListener("click", () => {
      const focused = document.activeElement === button;
      list.scrollTop = list.scrollHeight;
      this.clear();
      if (focused) list.focus({ preventScroll: true }); // the button is gone: keep the keyboard in the log
    });
  }

  // add counts one message that came in below what the log shows.
  add() {
    this.#count++;
    const arrow = document.createElement("span");
    arrow.setAttribute("aria-hidden", "true");
    arrow.textContent = " ↓";
    this.#button.replaceChildren(`${this.#count} new message${this.#count === 1 ? "" : "s"}`, arrow);
    this.#button.hidden = false;
  }

  clear() {
    this.#count = 0;
    this.#button.hidden = true;
  }
}
