// What the page says about its connection, in a person's words and without
// piling up: one line per time away, which says "Reconnecting…" while away
// and turns into "Reconnected" in place when the page is back (the same
// line again for the next time away, if nothing came after it); a warning
// about missing messages only when the page knows it missed some; and,
// while it is away, the member list greyed out and Send disabled (the text
// box stays usable: what is typed waits in the outbox).

// Close codes of a server that is going away (shutting down, restarting):
// it sent everything before closing, so the page missed nothing before it.
const GOING_AWAY = new Set([1001, 1012]);

export class ConnectionNotices {
  // add(kind, text) puts a notice in the log and returns its line; last()
  // returns the log's last line.
  constructor(add, last) {
    this.add = add;
    this.last = last;
    this.line = null; // the line of the latest time away
    this.away = false; // the page was cut off while the room went on
    this.restart = false; // the server closed the connection as it went away
  }

  // lost is the connection closing after it was open.
  lost(code) {
    this.restart = GOING_AWAY.has(code);
    this.away = !this.restart;
    const text = this.restart ? "The server is restarting. Reconnecting…" : "Connection lost. Reconnecting…";
    // The line of the last time away again, if nothing came after it.
    if (this.line && this.line.isConnected && this.line === this.last()) this.update(text);
    else this.line = this.add("status", text);
  }

  // truncated is the room saying that part of what the page missed is no
  // longer kept; it returns whether some of it is known to be missing.
  // After a server that went away (and a restart in memory forgets the
  // history), the page missed nothing: it was there until the end, and the
  // new room replays all it has. Cut off while the room went on, it missed
  // what the room said meanwhile and no longer has.
  truncated() {
    return this.away;
  }

  // back is the room's member list on a resumed connection: the page is
  // up to date again.
  back() {
    const text = this.restart ? "The server restarted; reconnected" : "Reconnected";
    // In place: what the room replayed meanwhile comes after it.
    if (this.line && this.line.isConnected) this.update(text);
    else this.line = this.add("status", text);
    this.away = false;
    this.restart = false;
  }

  update(text) {
    this.line.querySelector(".text").textContent = text;
    const time = this.line.querySelector("time");
    if (time) time.title = `${text}: ${new Date().toLocaleString()}`;
  }
}

// RepeatedNotices shows a notice that comes again and again (each refusal
// of the rate limit, say) as one line with a count, updated in place.
export class RepeatedNotices {
  constructor(add) {
    this.add = add;
    this.lines = new Map(); // kind and text -> { line, count }
  }

  show(kind, text) {
    const key = `${kind}\n${text}`;
    const had = this.lines.get(key);
    if (had && had.line.isConnected) {
      had.count++;
      let n = had.line.querySelector(".count");
      if (!n) {
        n = document.createElement("span");
        n.className = "count";
        had.line.querySelector(".text").after(n);
      }
      n.textContent = `×${had.count}`;
      had.line.dataset.count = String(had.count);
      return;
    }
    this.lines.set(key, { line: this.add(kind, text), count: 1 });
  }
}

// setOffline greys out what no longer shows the room as it is while the
// page is away: the member list, and the composer's Send.
export function setOffline(offline, panel, send) {
  panel.classList.toggle("offline", offline);
  panel.setAttribute("aria-disabled", String(offline));
  // aria-disabled, not disabled: Enter in the text box still submits the
  // form (a disabled default button would stop it), and the outbox holds
  // the message until the page is back.
  send.setAttribute("aria-disabled", String(offline));
  send.classList.toggle("offline", offline);
  send.title = offline ? "Offline: messages wait and are sent when the page is back" : "";
}
