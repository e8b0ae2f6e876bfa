// chatroom.js: a browser client for the rooms of package chatroom that speak
// the envelope (PROTOCOL.md), with nothing to install and no build step.
//
// It connects, reconnects with backoff and jitter, resumes with
// ?since=<the greatest id seen>, drops frames it has already seen, keeps
// the member list, and sends every message with a "ref": each message stays
// in an outbox, in the state "sending", until the room acknowledges it
// ("sent") or refuses it ("failed", with the reason); after a reconnect it
// is sent again with the same ref, which the room takes at most once.
// loadOlder() asks the room for the messages before the oldest one held
// (scrollback, PROTOCOL.md). A room that announces its rate limit (the
// members frame's "rate", WithAnnouncedRateLimit) is sent to at most at
// that pace: messages wait in the outbox instead of being refused, and one
// the limit refused all the same is sent again once it allows.
// See README.md next to this file for the API.

const ROOM_FRAMES = new Set(["message", "system", "join", "leave"]); // the frames with IDs of their own
const SEEN_IDS = 4096; // room frame IDs remembered to drop a replayed frame
const ACKED_IDS = 1024; // acknowledged IDs remembered to recognise a late echo
const HISTORY_FRAMES = new Set(["message", "system"]); // the frames scrollback serves
const SCROLLBACK_LIMIT = 50; // messages a loadOlder() asks for by default
const SCROLLBACK_MAX = 100; // the most a room gives for one request
const BAD_HISTORY = 'expected {"type":"history"'; // the start of the room's reason for a bad request
const NO_HISTORY = 'expected {"message": string}'; // the reason of a room without scrollback
const RATE_LIMITED = "rate limit exceeded"; // the reason of a refusal for the rate limit
const PACE_MARGIN = 0.9; // of the room's rate the client keeps to, for the delays of the network
const NOT_CONFIRMED = "not confirmed before the page was closed; it may have been delivered";

const DEFAULTS = Object.freeze({
  minDelay: 500, // ms before the first reconnect; doubles per failure
  maxDelay: 10000, // ms, the most a reconnect waits
  connectTimeout: 10000, // ms a connection may take to open
  ackTimeout: 15000, // ms without an answer to a message before the connection counts as dead; 0: never
  holdTimeout: 3000, // ms an echo of one's own message waits for its ack
  maxInFlight: 8, // messages sent and not yet answered, at most
  resendWindow: 120000, // ms after which a restored, unconfirmed message is not resent by itself
  storageKey: "chatroom.outbox",
});

// Close codes after which reconnecting would only be refused again.
function fatalClose(code, reason, joined) {
  return code === 4001 || (code === 1008 && reason === "join refused") || (code === 4009 && !joined);
}

// Close codes that answer the message being read: the first one in flight
// caused it, and sending it again would close the connection again.
function closeForMessage(code, reason) {
  return code === 1009 || code === 1007 || code === 1003 || (code === 1008 && reason === "rate limit exceeded");
}

// A bounded set of recent keys, oldest dropped first.
class Recent {
  constructor(size) {
    this.size = size;
    this.map = new Map();
  }
  has(k) {
    return this.map.has(k);
  }
  get(k) {
    return this.map.get(k);
  }
  set(k, v = true) {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value);
  }
}

function randomPrefix() {
  const b = new Uint8Array(9);
  globalThis.crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(36).padStart(2, "0")).join("");
}

// toWebSocketURL resolves url against the page and turns http(s) into ws(s).
function toWebSocketURL(url) {
  const base = globalThis.location ? globalThis.location.href : undefined;
  const u = new URL(String(url), base);
  if (u.protocol === "http:") u.protocol = "ws:";
  else if (u.protocol === "https:") u.protocol = "wss:";
  return u;
}

// Pacer is the client's copy of the room's token bucket (the connection's
// own, which starts full): frames are sent only while it holds a token.
// Without a rate it lets everything through and counts what it let.
class Pacer {
  rate = null; // { perSecond, burst } as the room announced it; null: unknown
  tokens = 0;
  at = 0; // when tokens was last brought up to date, ms
  spent = 0; // frames sent on this connection before the rate was known

  // open starts a connection: the room's bucket for it is full.
  open(now) {
    this.spent = 0;
    this.tokens = this.rate ? this.rate.burst : 0;
    this.at = now;
  }

  // set takes the rate the room announced on this connection.
  set(rate, now) {
    const known = this.rate !== null;
    this.rate = rate;
    if (!known) this.tokens = rate.burst - this.spent;
    this.refill(now);
  }

  refill(now) {
    if (!this.rate) return;
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.at) / 1000) * this.rate.perSecond * PACE_MARGIN);
    this.at = now;
  }

  // take spends a token, if one is there.
  take(now) {
    if (!this.rate) {
      this.spent++;
      return true;
    }
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens--;
    return true;
  }

  // spend spends a token that must be spent (a scrollback request), even
  // one not there yet: what follows waits the longer.
  spend(now) {
    if (this.take(now) || !this.rate) return;
    this.tokens--;
  }

  // empty is what a refusal says: the room's bucket holds nothing.
  empty(now) {
    this.refill(now);
    this.tokens = Math.min(this.tokens, 0);
  }

  // wait is how long, in ms, until the next token.
  wait() {
    return Math.max(1, Math.ceil(((1 - this.tokens) / (this.rate.perSecond * PACE_MARGIN)) * 1000));
  }
}

// announcedRate reads the "rate" of a members frame, or returns null.
function announcedRate(f) {
  const r = f.rate;
  if (r === null || typeof r !== "object") return null;
  const perSecond = Number(r.perSecond);
  const burst = Math.floor(Number(r.burst));
  if (!(perSecond > 0) || !Number.isFinite(perSecond) || !(burst >= 1)) return null;
  return { perSecond, burst };
}

/** One message the client sends: its text and what became of it. */
export class OutgoingMessage {
  constructor(ref, text, to, createdAt) {
    /** The ref it is sent with: the same on every resend. */
    this.ref = ref;
    this.text = text;
    /** The recipient of a direct message, or undefined. */
    this.to = to;
    /** "sending", "sent" or "failed". */
    this.state = "sending";
    /** Once sent: the room's id and time for it. */
    this.id = undefined;
    this.time = undefined;
    /** Once failed: { message, code } from the room's error frame or close. */
    this.error = undefined;
    /** Sent: the room's echo of it was already dispatched as a "message" event. */
    this.echoed = false;
    /** How many times it was put on a connection. */
    this.attempts = 0;
    this.createdAt = createdAt;
    this.conn = 0; // the connection it was last sent on; 0: none
  }
}

/** Why loadOlder() gave no messages: code and message are the room's, or 0. */
export class ScrollbackError extends Error {
  constructor(message, code = 0) {
    super(message);
    this.name = "ScrollbackError";
    /** The error frame's or the close's code; 0 when the client gave up itself. */
    this.code = code;
  }
}

/**
 * A connection to one room that survives reconnects. Events (all
 * CustomEvent, the payload in detail): "state", "message", "direct",
 * "presence", "system", "error", "truncated", "outbox", "limited", "frame".
 */
export class ChatClient extends EventTarget {
  #opt;
  #url;
  #WebSocket;
  #storage;
  #ws = null;
  #state = "idle";
  #conn = 0; // connections opened so far
  #attempt = 0; // failed connections since the last frame received
  #joined = false; // a connection of this client has received a frame
  #opened = false; // the current connection opened
  #resuming = false; // the current connection asked for since
  #wanted = false; // connect() was called and close() was not
  #timers = { retry: 0, connect: 0, ack: 0, hold: 0, history: 0, pace: 0 };
  #lastId = 0;
  #oldest = 0; // the least id of a message or system frame received; 0: none yet
  #history = null; // the scrollback request waiting for its answer: { before, promise, resolve, reject }
  #beginning = false; // the room said there is nothing older than #oldest
  #noScrollback = null; // the ScrollbackError of a room that does not serve scrollback
  #seen = new Recent(SEEN_IDS);
  #shown = new Recent(ACKED_IDS); // ids of message and direct frames dispatched
  #acked = new Recent(ACKED_IDS); // id -> { ref, text } of acknowledged messages
  #members = [];
  #entries = []; // the outbox: sending and failed, in the order typed
  #queue = []; // frames held behind a possible echo of one's own message: { frame, ref }
  #pacer = new Pacer();
  #prefix = randomPrefix();
  #counter = 0;

  /**
   * @param {object} options url (string, URL, or a function returning one;
   * the client adds since), and optionally the timings of DEFAULTS,
   * storage (a Storage such as sessionStorage, to keep the outbox across
   * reloads), storageKey, WebSocket (a constructor).
   */
  constructor(options) {
    super();
    if (!options || options.url === undefined) throw new TypeError("chatroom: options.url is required");
    this.#opt = { ...DEFAULTS, ...options };
    this.#url = typeof options.url === "function" ? options.url : () => options.url;
    this.#WebSocket = options.WebSocket || globalThis.WebSocket;
    this.#storage = options.storage || null;
    this.#restore();
  }

  /** "idle", "connecting", "open", "waiting", "closed" or "failed". */
  get state() {
    return this.#state;
  }
  /** The nicknames present, as the last member list and notices say. */
  get members() {
    return this.#members.slice();
  }
  /** The greatest frame id seen: where a reconnect resumes. */
  get lastId() {
    return this.#lastId;
  }
  /** The messages not yet sent: sending and failed, in the order typed. */
  get outbox() {
    return this.#entries.slice();
  }
  /**
   * The rate limit the room announced ({ perSecond, burst }), which the
   * outbox keeps to; null if it announced none.
   */
  get rate() {
    return this.#pacer.rate ? { ...this.#pacer.rate } : null;
  }
  /** The room said there is nothing older than the oldest message held. */
  get atBeginning() {
    return this.#beginning;
  }

  /** Connects, and keeps reconnecting until close(). */
  connect() {
    this.#wanted = true;
    if (this.#ws || this.#state === "connecting") return;
    this.#clear("retry");
    this.#open();
  }

  /**
   * Connects at once, skipping the wait before the next reconnect (e.g.
   * when the browser is back online), also after a refusal ("failed").
   */
  reconnectNow() {
    this.#wanted = true;
    if (this.#ws) return;
    this.#attempt = 0;
    this.#clear("retry");
    this.#open();
  }

  /** Closes the connection and stops reconnecting. The outbox is kept. */
  close(code = 1000, reason = "") {
    this.#wanted = false;
    for (const k of Object.keys(this.#timers)) this.#clear(k);
    const ws = this.#ws;
    this.#ws = null;
    this.#releaseAll();
    this.#historyFailed("closed", code);
    if (ws) ws.close(code, reason);
    this.#setState("closed", { code, reason });
  }

  /**
   * Sends text (to a member, with { to }) and returns its OutgoingMessage,
   * which is in the outbox until the room takes or refuses it.
   */
  send(text, { to } = {}) {
    const e = new OutgoingMessage(this.#nextRef(), String(text), to === undefined ? undefined : String(to), Date.now());
    this.#entries.push(e);
    this.#changed(e);
    this.#pump();
    return e;
  }

  /** Sends a failed message again, with its ref. */
  retry(message) {
    const e = this.#find(message);
    if (!e || e.state !== "failed") return e;
    e.state = "sending";
    e.error = undefined;
    e.conn = 0;
    e.createdAt = Date.now();
    this.#moveToEnd(e);
    this.#changed(e);
    this.#pump();
    return e;
  }

  /**
   * Replaces a failed message by text, sent as a new message (a new ref);
   * returns the new OutgoingMessage. The old one leaves the outbox.
   */
  edit(message, text) {
    const e = this.#find(message);
    if (!e || e.state !== "failed") return e;
    this.#remove(e, "discarded");
    return this.send(text, { to: e.to });
  }

  /** Gives up a failed message: it leaves the outbox. */
  discard(message) {
    const e = this.#find(message);
    if (e && e.state === "failed") this.#remove(e, "discarded");
  }

  /**
   * Asks the room for up to limit (1 to 100) messages older than the
   * oldest message or system frame this client holds (the newest, if it
   * holds none). Resolves with { messages, more }: the frames, oldest first,
   * none of them one it holds already, and whether the room has older ones.
   * While a request waits for its answer, a call returns that request's
   * promise and sends nothing; once the room said there is nothing older,
   * it resolves with no messages and sends nothing. Rejects with a
   * ScrollbackError when the connection is not open or closes first, when
   * the room refuses the request, or serves no scrollback.
   */
  loadOlder(limit = SCROLLBACK_LIMIT) {
    if (this.#history) return this.#history.promise;
    if (this.#noScrollback) return Promise.reject(this.#noScrollback);
    if (this.#beginning) return Promise.resolve({ messages: [], more: false });
    const ws = this.#ws;
    if (!ws || !this.#opened) return Promise.reject(new ScrollbackError("not connected"));
    const n = Math.min(SCROLLBACK_MAX, Math.max(1, Math.floor(Number(limit)) || SCROLLBACK_LIMIT));
    const f = { type: "history", before: this.#oldest, limit: n };
    try {
      ws.send(JSON.stringify(f));
    } catch {
      return Promise.reject(new ScrollbackError("not connected"));
    }
    this.#pacer.spend(Date.now()); // the room counts it like a message
    const h = { before: this.#oldest };
    h.promise = new Promise((resolve, reject) => {
      h.resolve = resolve;
      h.reject = reject;
    });
    this.#history = h;
    if (this.#opt.ackTimeout) {
      this.#timers.history = setTimeout(() => {
        this.#timers.history = 0;
        // As for a message: the room answers at once, so silence means a
        // dead connection. Closing it rejects the request.
        if (this.#ws === ws && this.#history === h) ws.close(4000, "no answer");
      }, this.#opt.ackTimeout);
    }
    return h.promise;
  }

  // historyAnswered settles the scrollback request with the room's answer.
  #historyAnswered(f) {
    const h = this.#history;
    if (!h || f.before !== h.before) return; // a late answer to a request given up
    const messages = [];
    const ids = new Set();
    for (const m of Array.isArray(f.messages) ? f.messages : []) {
      if (m === null || typeof m !== "object" || !HISTORY_FRAMES.has(m.type) || !Number.isSafeInteger(m.id)) continue;
      // Held already: received live meanwhile, or newer than the oldest held.
      if (this.#seen.has(m.id) || ids.has(m.id) || (this.#oldest > 0 && m.id >= this.#oldest)) continue;
      ids.add(m.id);
      messages.push(m);
    }
    messages.sort((a, b) => a.id - b.id);
    if (messages.length) this.#oldest = messages[0].id;
    const more = f.more === true;
    if (!more) this.#beginning = true;
    this.#settleHistory();
    h.resolve({ messages, more });
  }

  // historyFailed rejects the scrollback request, if one waits.
  #historyFailed(message, code) {
    const h = this.#history;
    if (!h) return;
    const err = new ScrollbackError(message, code);
    if (message === NO_HISTORY) this.#noScrollback = err; // asking again would fail again
    this.#settleHistory();
    h.reject(err);
  }

  #settleHistory() {
    this.#history = null;
    this.#clear("history");
  }

  #nextRef() {
    this.#counter++;
    return `${this.#prefix}.${this.#counter}`;
  }

  #find(m) {
    const ref = typeof m === "string" ? m : m && m.ref;
    return this.#entries.find((e) => e.ref === ref);
  }

  #moveToEnd(e) {
    this.#entries.splice(this.#entries.indexOf(e), 1);
    this.#entries.push(e);
  }

  #remove(e, state) {
    const i = this.#entries.indexOf(e);
    if (i >= 0) this.#entries.splice(i, 1);
    if (state === "discarded") {
      this.#save();
      this.#emit("outbox", { message: e, discarded: true });
    }
  }

  #emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  #setState(state, extra = {}) {
    const previous = this.#state;
    this.#state = state;
    this.#emit("state", { state, previous, ...extra });
  }

  #clear(name) {
    clearTimeout(this.#timers[name]);
    this.#timers[name] = 0;
  }

  // Connection.

  #open() {
    const u = toWebSocketURL(this.#url());
    this.#resuming = this.#lastId > 0;
    if (this.#resuming) u.searchParams.set("since", String(this.#lastId));
    else u.searchParams.delete("since");
    const ws = new this.#WebSocket(u.href);
    this.#ws = ws;
    this.#opened = false;
    this.#setState("connecting", { resuming: this.#resuming, attempt: this.#attempt });
    this.#timers.connect = setTimeout(() => {
      if (this.#ws === ws && !this.#opened) ws.close(); // fails it: onclose follows
    }, this.#opt.connectTimeout);
    ws.onopen = () => {
      if (this.#ws !== ws) return;
      this.#clear("connect");
      this.#opened = true;
      this.#conn++;
      this.#pacer.open(Date.now());
      this.#setState("open", { resuming: this.#resuming });
      if (this.#queue.length) this.#armHold();
      this.#pump();
    };
    ws.onmessage = (ev) => {
      if (this.#ws === ws) this.#receive(ev.data);
    };
    ws.onclose = (ev) => {
      if (this.#ws !== ws) return;
      this.#closed(ev);
    };
  }

  #closed(ev) {
    this.#ws = null;
    this.#clear("connect");
    this.#clear("ack");
    this.#clear("hold");
    this.#clear("pace");
    const wasOpen = this.#opened;
    this.#opened = false;
    const code = ev.code;
    const reason = ev.reason || "";
    const inFlight = this.#inFlight();
    // A frame without a message closes with these: the scrollback request
    // caused it, not a message.
    const forHistory = this.#history && code === 1007 && (reason === NO_HISTORY || reason.startsWith(BAD_HISTORY));
    this.#historyFailed(reason || "connection closed", code);
    if (!forHistory && closeForMessage(code, reason) && inFlight.length) {
      this.#fail(inFlight[0], { message: reason || String(code), code });
      this.#release();
    }
    if (!this.#wanted) return;
    if (fatalClose(code, reason, this.#joined)) {
      this.#wanted = false;
      this.#releaseAll();
      this.#setState("failed", { code, reason, wasOpen });
      return;
    }
    const ceiling = Math.min(this.#opt.maxDelay, this.#opt.minDelay * 2 ** this.#attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.#attempt++;
    this.#timers.retry = setTimeout(() => {
      this.#timers.retry = 0;
      if (this.#wanted && !this.#ws) this.#open();
    }, delay);
    this.#setState("waiting", { code, reason, wasOpen, retryIn: delay, retryAt: Date.now() + delay });
  }

  // Sending.

  #inFlight() {
    return this.#entries.filter((e) => e.state === "sending" && e.conn === this.#conn && e.conn > 0);
  }

  // pump sends what waits, up to maxInFlight unanswered, on an open
  // connection, as fast as the room's rate limit allows.
  #pump() {
    const ws = this.#ws;
    if (!ws || !this.#opened || this.#timers.pace) return;
    let n = this.#inFlight().length;
    for (const e of this.#entries) {
      if (n >= this.#opt.maxInFlight) break;
      if (e.state !== "sending" || e.conn === this.#conn) continue;
      if (!this.#pacer.take(Date.now())) {
        this.#timers.pace = setTimeout(() => {
          this.#timers.pace = 0;
          this.#pump();
        }, this.#pacer.wait());
        break;
      }
      const f = { message: e.text, ref: e.ref };
      if (e.to !== undefined) f.to = e.to;
      try {
        ws.send(JSON.stringify(f));
      } catch {
        return; // closing: onclose follows, and the next connection sends it
      }
      e.conn = this.#conn;
      e.attempts++;
      n++;
    }
    if (n > 0 && !this.#timers.ack) this.#armAck();
  }

  #armAck() {
    this.#clear("ack");
    if (!this.#opt.ackTimeout) return;
    const ws = this.#ws;
    this.#timers.ack = setTimeout(() => {
      this.#timers.ack = 0;
      // The room answers every message at once: a silent one means a dead
      // connection that the browser has not noticed yet.
      if (this.#ws === ws && this.#inFlight().length) ws.close(4000, "no answer");
    }, this.#opt.ackTimeout);
  }

  #answered() {
    this.#clear("ack");
    if (this.#inFlight().length) this.#armAck();
    this.#release();
    this.#pump();
  }

  #fail(e, error) {
    e.state = "failed";
    e.error = error;
    this.#changed(e);
  }

  #changed(e) {
    this.#save();
    this.#emit("outbox", { message: e });
  }

  #ack(f) {
    const e = this.#entries.find((x) => x.ref === f.ref);
    if (!e) return; // answered already, e.g. by an earlier connection
    e.state = "sent";
    e.id = f.id;
    e.time = f.time;
    e.error = undefined;
    this.#acked.set(f.id, { ref: e.ref, text: e.text });
    const held = this.#queue.find((q) => q.frame.id === f.id && q.frame.message === e.text);
    if (held) held.ref = e.ref;
    e.echoed = !held && this.#shown.has(f.id);
    this.#remove(e);
    this.#changed(e);
    this.#answered();
  }

  #refused(f) {
    const e = this.#entries.find((x) => x.ref === f.ref);
    if (!e || e.state !== "sending") return;
    if (this.#pacer.rate && f.message === RATE_LIMITED) {
      // The room took nothing and its ref is free: sent again, in its
      // place in the outbox, once the limit allows.
      this.#pacer.empty(Date.now());
      e.conn = 0;
      this.#emit("limited", { message: e });
    } else {
      this.#fail(e, { message: String(f.message ?? "refused"), code: f.code });
    }
    this.#answered();
  }

  // Receiving.

  #receive(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f === null || typeof f !== "object" || Array.isArray(f)) return;
    this.#attempt = 0;
    this.#joined = true;
    if (f.type === "ack") {
      // An ack's id is its message's: the echo may still be on its way, so
      // it does not move where a reconnect resumes.
      if (typeof f.ref === "string") this.#ack(f);
      return;
    }
    if (Number.isSafeInteger(f.id)) {
      if (ROOM_FRAMES.has(f.type)) {
        if (this.#seen.has(f.id)) return; // replayed: shown already
        this.#seen.set(f.id);
        if (HISTORY_FRAMES.has(f.type) && (this.#oldest === 0 || f.id < this.#oldest)) this.#oldest = f.id;
      }
      // After a truncated frame the IDs may be a new room's: resume from them.
      if (f.type === "truncated" || f.id > this.#lastId) this.#lastId = f.id;
    }
    if (f.type === "error" && typeof f.ref === "string") {
      this.#refused(f);
      return;
    }
    if (f.type === "history") {
      // An answer to this client alone, outside the room's order: it does
      // not wait behind a held echo.
      this.#emit("frame", { frame: f });
      this.#historyAnswered(f);
      return;
    }
    if (f.type === "error" && this.#history) {
      // Every message goes with a ref: an error frame without one answers
      // the scrollback request (rate limit, history unavailable, invalid).
      this.#emit("frame", { frame: f });
      this.#historyFailed(String(f.message ?? "refused"), f.code);
      return;
    }
    // The echo of a message acknowledged already carries its ref.
    const acked = (f.type === "message" || f.type === "direct") && this.#acked.get(f.id);
    this.#enqueue({ frame: f, ref: acked && acked.text === f.message ? acked.ref : undefined });
  }

  // candidate reports whether f may be the echo of a message still waiting
  // for its ack: it then waits for that ack, so that the page never shows
  // a message twice (once pending, once echoed).
  #candidate(f) {
    if (f.type !== "message" && f.type !== "direct") return false;
    return this.#entries.some((e) => e.state === "sending" && e.conn > 0 && e.text === f.message &&
      (f.type === "direct" ? e.to === f.to : e.to === undefined));
  }

  #enqueue(q) {
    if (this.#queue.length === 0 && (q.ref || !this.#candidate(q.frame))) {
      this.#dispatch(q);
      return;
    }
    this.#queue.push(q);
    if (this.#queue.length === 1 && this.#opened) this.#armHold();
  }

  #armHold() {
    this.#clear("hold");
    this.#timers.hold = setTimeout(() => {
      this.#timers.hold = 0;
      this.#releaseAll();
    }, this.#opt.holdTimeout);
  }

  #release() {
    while (this.#queue.length && (this.#queue[0].ref || !this.#candidate(this.#queue[0].frame))) {
      this.#dispatch(this.#queue.shift());
    }
    if (this.#queue.length === 0) this.#clear("hold");
  }

  #releaseAll() {
    this.#clear("hold");
    while (this.#queue.length) this.#dispatch(this.#queue.shift());
  }

  #dispatch({ frame: f, ref }) {
    this.#emit("frame", { frame: f });
    switch (f.type) {
      case "message":
      case "direct":
        if (Number.isSafeInteger(f.id)) this.#shown.set(f.id);
        this.#emit(f.type, { frame: f, ref, mine: ref !== undefined });
        break;
      case "members": {
        this.#members = Array.isArray(f.members) ? f.members.filter((n) => typeof n === "string") : [];
        const rate = announcedRate(f);
        if (rate) {
          this.#pacer.set(rate, Date.now());
          this.#pump();
        }
        this.#emit("presence", { type: "members", frame: f, members: this.members, resumed: this.#resuming });
        break;
      }
      case "join":
        if (typeof f.nickname === "string" && !this.#members.includes(f.nickname)) this.#members.push(f.nickname);
        this.#emit("presence", { type: "join", frame: f, nickname: f.nickname, members: this.members, resumed: this.#resuming });
        break;
      case "leave": {
        const i = this.#members.indexOf(f.nickname);
        if (i >= 0) this.#members.splice(i, 1);
        this.#emit("presence", { type: "leave", frame: f, nickname: f.nickname, members: this.members, resumed: this.#resuming });
        break;
      }
      case "system":
      case "error":
      case "truncated":
        this.#emit(f.type, { frame: f });
        break;
      default:
      // A type this client does not know: "frame" carried it.
    }
  }

  // Persistence: the outbox, in options.storage, so that a reload loses
  // nothing typed.

  #save() {
    if (!this.#storage) return;
    const kept = this.#entries.map((e) => ({
      ref: e.ref, text: e.text, to: e.to, state: e.state, error: e.error, createdAt: e.createdAt,
    }));
    try {
      if (kept.length) this.#storage.setItem(this.#opt.storageKey, JSON.stringify(kept));
      else this.#storage.removeItem(this.#opt.storageKey);
    } catch {
      // Storage full or disabled: the outbox lives in memory only.
    }
  }

  #restore() {
    if (!this.#storage) return;
    let kept;
    try {
      kept = JSON.parse(this.#storage.getItem(this.#opt.storageKey) || "[]");
    } catch {
      return;
    }
    if (!Array.isArray(kept)) return;
    const now = Date.now();
    for (const k of kept) {
      if (!k || typeof k.ref !== "string" || typeof k.text !== "string") continue;
      const e = new OutgoingMessage(k.ref, k.text, typeof k.to === "string" ? k.to : undefined, Number(k.createdAt) || now);
      if (k.state === "failed") {
        e.state = "failed";
        e.error = k.error && typeof k.error === "object" ? k.error : { message: "refused" };
      } else if (now - e.createdAt > this.#opt.resendWindow) {
        // The room's record of refs may have forgotten it: resending by
        // itself could deliver it twice. The user decides (retry).
        e.state = "failed";
        e.error = { message: NOT_CONFIRMED, code: 0 };
      }
      this.#entries.push(e);
    }
  }
}
