// The log's window. A long session would leave thousands of lines in the
// DOM, and every line costs style, layout and memory on the device: while
// the log follows its bottom, it keeps at most MAX_LINES rendered. The
// oldest lines leave the DOM in batches (down to KEEP_LINES, so that a
// trim is rare) and wait, as they were, in memory; scrolled up to the
// window's top, the log puts them back, a batch at a time, before it asks
// the room for older ones (app.js's loadOlder).
//
// It also keeps a screen reader quiet while the log redraws: the log is a
// live region (role="log", aria-relevant="additions"), and lines put back,
// loaded from the room's history or received on join are no news.

const MAX_LINES = 500; // lines in the DOM, at most, while following the bottom
const KEEP_LINES = 400; // lines a trim leaves
const RESTORE_BATCH = 100; // lines put back at a time
const BUSY_AFTER = 100; // ms the log stays busy after a redraw: a few frames

export class LogWindow {
  #list;
  #hidden = []; // the lines taken out, oldest first, without day separators
  #busy = 0; // redraws in progress (busy() not yet done)
  #generation = 0; // bumped by reset: a done() of a previous room does nothing

  constructor(list) {
    this.#list = list;
  }

  // hidden is how many lines wait in memory above the rendered ones.
  get hidden() {
    return this.#hidden.length;
  }

  // reset forgets the lines of the previous room.
  reset() {
    this.#hidden = [];
    this.#busy = 0;
    this.#generation++;
    this.#list.setAttribute("aria-busy", "false");
  }

  // trim takes the oldest lines out of the DOM when it holds more than
  // MAX_LINES, and reports whether it did: the caller then redraws the day
  // separators and the groups at the new top. The log's first line
  // (li.older) stays, and so do the user's pending messages, at the bottom.
  trim() {
    const list = this.#list;
    if (list.childElementCount <= MAX_LINES) return false;
    let n = list.childElementCount - KEEP_LINES;
    const out = [];
    for (let li = this.#head().nextElementSibling; n > 0 && li && !li.classList.contains("pending"); n--) {
      const next = li.nextElementSibling;
      li.remove();
      if (!li.classList.contains("day")) out.push(li);
      li = next;
    }
    for (const li of out) this.#hidden.push(li);
    return out.length > 0;
  }

  // restore puts the newest RESTORE_BATCH of the hidden lines back above
  // the rendered ones and returns how many; the caller redraws.
  restore() {
    const lines = this.#hidden.splice(Math.max(0, this.#hidden.length - RESTORE_BATCH));
    this.#head().after(...lines);
    return lines.length;
  }

  // busy marks the log busy (aria-busy) until shortly after the function
  // it returns has been called: a screen reader then announces none of the
  // lines that went in meanwhile. Set and cleared in one task, the mark
  // would never reach the accessibility tree, which the browser updates
  // with the next frame; a timer rather than requestAnimationFrame, which
  // a background tab does not run.
  busy() {
    this.#busy++;
    this.#list.setAttribute("aria-busy", "true");
    const generation = this.#generation;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      setTimeout(() => {
        if (generation !== this.#generation || --this.#busy > 0) return;
        this.#list.setAttribute("aria-busy", "false");
      }, BUSY_AFTER);
    };
  }

  // quietly runs change, a redraw, with the log busy.
  quietly(change) {
    const done = this.busy();
    try {
      change();
    } finally {
      done();
    }
  }

  #head() {
    return this.#list.querySelector(":scope > li.older");
  }
}
