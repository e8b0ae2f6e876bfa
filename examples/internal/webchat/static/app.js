// The chat page of examples/chat: plain JavaScript, no build step.
//
// It talks to /rooms/{room}/chat through chatroom.js, the library's client
// (jsclient/ in the repository; PROTOCOL.md is the wire): history on join,
// the member list, join and leave notices, resume with ?since= after a lost
// connection, and an outbox: what the user sends shows at once as pending,
// becomes a message when the room has taken it, and stays, with the reason
// and a way to retry or edit it, when the room refuses it. The outbox is kept
// in sessionStorage, so that a reload loses nothing typed. Scrolled to the
// top, the log loads older messages (scrollback) above what it shows, and
// what the user was looking at stays where it was.
//
// Everything that comes from the network is rendered with textContent (or
// as an attribute value), never parsed as HTML.
import { ChatClient } from "./chatroom.js";
import { hue } from "./colour.js";
import { isSendKey, setupComposer } from "./composer.js";
import { LogWindow } from "./logwindow.js";
import { NewMessages, atBottom } from "./newmessages.js";
import { ConnectionNotices, RepeatedNotices, setOffline } from "./connection.js";
import { memberDrawer } from "./drawer.js";
import { forget, stayIn, stayed } from "./stay.js";

const GROUP_WINDOW = 5 * 60 * 1000; // messages of one sender this close share a header
const NICKNAME_KEY = "chatroom.nickname";
const OLDER_BATCH = 50; // messages one scrollback request asks for
const NEAR_TOP = 120; // px from the top of the log at which older messages load

const $ = (id) => document.getElementById(id);
const logWindow = new LogWindow($("messages"));
const newMessages = new NewMessages($("messages"), $("new-messages"));

function sessionStore() {
  try {
    return window.sessionStorage;
  } catch {
    return undefined; // storage disabled: the outbox lives in memory only
  }
}

// One visit to one room: the client, and what the page shows of it.
class Session {
  constructor(nickname, room) {
    this.nickname = nickname;
    this.room = room;
    this.lost = false; // a connection that was open has closed
    this.ticker = 0; // countdown of the pending reconnect
    this.joined = false; // a member list arrived: the history on join is in
    this.loading = false; // a scrollback request waits for its answer
    this.joining = logWindow.busy(); // the history on join is no news: the log announces none of it
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const q = new URLSearchParams({ nickname });
    this.client = new ChatClient({
      url: `${scheme}//${location.host}/rooms/${encodeURIComponent(room)}/chat?${q}`,
      storage: sessionStore(),
      storageKey: `chatroom.outbox ${room} ${nickname}`,
    });
    this.conn = new ConnectionNotices(addNotice, lastRoomLine);
    this.repeated = new RepeatedNotices(addNotice);
    const on = (type, f) => this.client.addEventListener(type, (e) => f.call(this, e.detail));
    on("state", this.stateChanged);
    on("message", this.message);
    on("presence", this.presence);
    on("system", (d) => addNotice("system", String(d.frame.message ?? ""), d.frame.time, d.frame.id));
    on("error", (d) => this.repeated.show("error", `Not sent: ${d.frame.message ?? "refused"}`));
    on("truncated", (d) => this.conn.truncated() && addNotice("truncated",
      "Some messages from while you were away are no longer available (the room's history ran out).", d.frame.time));
    on("limited", () => this.repeated.show("limited", "Sending more slowly, as the room's rate limit allows"));
    on("outbox", this.outboxChanged);
    for (const m of this.client.outbox) renderPending(this, m); // kept across a reload
    this.client.connect();
  }

  stateChanged(d) {
    clearInterval(this.ticker);
    this.ticker = 0;
    showRetry(false);
    setOffline(d.state !== "open" || !this.joined, $("members-panel"), $("send"));
    switch (d.state) {
      case "connecting": {
        const again = this.lost || d.attempt > 0;
        setStatus(again ? "reconnecting" : "connecting", again ? "Reconnecting…" : "Connecting…");
        break;
      }
      case "open":
        setStatus("connected", `Connected as ${this.nickname}`);
        break;
      case "waiting": {
        // 4009 on a reconnect: most likely the room still holds this page's
        // own old connection, which it drops once its keepalive times out
        // (about 45 s after a network cut). The client keeps trying.
        const old = d.code === 4009;
        if (d.wasOpen && !old) {
          this.lost = true;
          this.joined = false; // the member list is from before
          this.conn.lost(d.code);
        }
        const text = old ? "Waiting for the old connection to expire. Retrying" : "Offline. Reconnecting";
        const show = () => {
          const s = Math.max(1, Math.ceil((d.retryAt - Date.now()) / 1000));
          setStatus("reconnecting", `${text} in ${s} s…`);
        };
        show();
        showRetry(true);
        this.ticker = setInterval(show, 1000);
        break;
      }
      case "failed":
        if (d.code === 4009) {
          // The first connection: someone in the room has this nickname.
          refuseJoin(`“${this.nickname}” is already in #${this.room} (nickname taken). Pick another nickname.`);
          return;
        }
        setStatus("failed", `Disconnected: ${d.reason || d.code}`);
        showRetry(true);
        break;
      default:
    }
  }

  message(d) {
    if (d.ref) removePending(d.ref); // the echo of a message sent from here
    addMessage(d.frame, d.mine || d.frame.nickname === this.nickname);
  }

  presence(d) {
    const me = d.nickname === this.nickname;
    renderMembers(this);
    switch (d.type) {
      case "members":
        if (d.resumed) this.conn.back();
        this.lost = false;
        this.joined = true;
        this.joining();
        setOffline(false, $("members-panel"), $("send"));
        if ($("older").dataset.state === "none") showOlder("idle");
        this.loadOlder(); // a log too short to scroll is at its top already
        break;
      case "join":
        if (!me) addNotice("join", `${d.nickname} joined`, d.frame.time, d.frame.id);
        else if (!d.resumed) addNotice("join", `You joined #${this.room}`, d.frame.time, d.frame.id);
        break;
      case "leave":
        if (!me) addNotice("leave", `${d.nickname} left`, d.frame.time, d.frame.id);
        break;
      default:
    }
  }

  outboxChanged(d) {
    const m = d.message;
    if (d.discarded) {
      removePending(m.ref);
    } else if (m.state === "sent" && (m.echoed || messageShown(m.id))) {
      removePending(m.ref); // the message shows already, in its place
    } else {
      renderPending(this, m);
    }
  }

  // loadOlder puts older messages above the log's first ones when its top
  // is in view (scrolled there, or a log too short to scroll), or at once
  // with force (the "Load older messages" button). One request at a time;
  // after one, it goes on while the top is still in view.
  async loadOlder(force = false) {
    if (logWindow.hidden) {
      // Lines the log took out of the DOM come back first, from memory.
      if (force || $("messages").scrollTop <= NEAR_TOP) this.restoreLines();
      return;
    }
    if (this.loading || !this.joined || this.client.state !== "open") return;
    if (this.client.atBeginning) {
      showOlder("beginning", this.room);
      return;
    }
    if (!force && $("messages").scrollTop > NEAR_TOP) return;
    this.loading = true;
    showOlder("loading");
    let got;
    try {
      got = await this.client.loadOlder(OLDER_BATCH);
    } catch (err) {
      this.loading = false;
      // 1007: a room that serves no scrollback. Otherwise the connection
      // closed or the room could not read its history: scrolling, the
      // button or the next connection tries again.
      if (session === this) showOlder(err.code === 1007 ? "unavailable" : "error");
      return;
    }
    this.loading = false;
    if (session !== this) return; // left the room meanwhile
    const newest = got.messages.length ? got.messages.at(-1).id : 0;
    keepPosition(newest, () => logWindow.quietly(() => {
      prependOlder(this, got.messages);
      showOlder(got.more ? "idle" : "beginning", this.room);
    }));
    if (got.more) this.loadOlder();
  }

  // restoreLines puts a batch of the lines the log took out back above the
  // ones it shows; once all are back, the log's first line says again what
  // the room has before them.
  restoreLines() {
    const list = $("messages");
    keepPosition(0, () => logWindow.quietly(() => {
      logWindow.restore();
      redraw(list);
    }));
    if (!logWindow.hidden) this.loadOlder();
  }

  reconnectNow() {
    this.client.reconnectNow();
  }

  send(text) {
    this.client.send(text);
  }

  leave() {
    clearInterval(this.ticker);
    this.client.close(1000, "left");
  }
}

// Rendering. Text from the network goes through textContent only.

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

function parseTime(s) {
  const t = new Date(typeof s === "string" ? s : NaN);
  return Number.isNaN(t.getTime()) ? null : t;
}

function timeElement(t) {
  const e = el("time", "time");
  if (t) {
    e.dateTime = t.toISOString();
    e.title = t.toLocaleString();
    e.textContent = t.toLocaleTimeString([], { hour: "numeric", minute: "2-digit" });
  }
  return e;
}

// initial is the first character as the reader sees it (a whole emoji).
function initial(nickname) {
  if (typeof Intl !== "undefined" && Intl.Segmenter) {
    for (const { segment } of new Intl.Segmenter().segment(nickname)) return segment.toUpperCase();
    return "?";
  }
  return (Array.from(nickname)[0] || "?").toUpperCase();
}

function avatar(nickname, className) {
  const a = el("span", className, initial(nickname));
  a.setAttribute("aria-hidden", "true");
  a.style.setProperty("--hue", String(hue(nickname)));
  return a;
}

let lastDay = "";

// The list holds the room's lines in the room's order, then the user's
// pending messages (li.pending) in the order typed: a line from the room
// goes in before the first pending one.
function firstPending() {
  return $("messages").querySelector("li.pending");
}

function append(li, t, force) {
  const list = $("messages");
  const stick = force || atBottom(list);
  const before = firstPending();
  if (t) {
    const day = t.toDateString();
    if (day !== lastDay) {
      lastDay = day;
      list.insertBefore(dayLine(t), before);
    }
  }
  list.insertBefore(li, before);
  if (!stick) {
    if (li.classList.contains("msg")) newMessages.add();
    return;
  }
  // Following the bottom: the oldest lines may leave the DOM (not while
  // older messages load: they go in at the top).
  if (!(session && session.loading) && logWindow.trim()) {
    logWindow.quietly(() => redraw(list));
    if ($("older").dataset.state !== "none") showOlder("idle"); // the lines taken out come back from there
  }
  list.scrollTop = list.scrollHeight;
}

function addMessage(f, mine) {
  const li = messageLine(f, mine);
  const before = firstPending();
  group(li, before ? before.previousElementSibling : $("messages").lastElementChild);
  append(li, parseTime(f.time), mine);
}

// messageLine is the line of one chat message of the room.
function messageLine(f, mine) {
  const nickname = String(f.nickname ?? "");
  const t = parseTime(f.time);
  const li = el("li", mine ? "msg mine" : "msg");
  li.dataset.nickname = nickname;
  li.style.setProperty("--hue", String(hue(nickname)));
  if (Number.isSafeInteger(f.id)) li.dataset.id = String(f.id);
  if (t) li.dataset.t = String(t.getTime());
  if (!mine) li.append(avatar(nickname, "avatar"));
  const bubble = el("div", "bubble");
  const meta = el("div", "meta");
  meta.append(el("span", "nick", nickname), timeElement(t));
  bubble.append(meta, el("div", "text", String(f.message ?? "")));
  li.append(bubble);
  return li;
}

// group marks a message that follows prev, of one sender and close in
// time, as its continuation: it shares prev's header.
function group(li, prev) {
  const cont = Boolean(prev && prev.classList.contains("msg") && !prev.classList.contains("pending") &&
    prev.dataset.nickname === li.dataset.nickname && li.dataset.t && prev.dataset.t &&
    Number(li.dataset.t) - Number(prev.dataset.t) < GROUP_WINDOW);
  li.classList.toggle("cont", cont);
}

// messageShown reports whether the room's message id is in the list.
function messageShown(id) {
  return [...$("messages").querySelectorAll("li.msg[data-id]")].some((li) => li.dataset.id === String(id));
}

function pendingLine(ref) {
  return [...$("messages").querySelectorAll("li.pending")].find((li) => li.dataset.ref === ref);
}

function removePending(ref) {
  const li = pendingLine(ref);
  if (li) li.remove();
}

const PENDING_TEXT = { sending: "Sending…", sent: "Sent" };

// renderPending shows one of the user's messages that the room has not
// echoed yet: sending, sent (acknowledged, its echo on the way), or failed
// with the reason and the ways out: retry, edit, discard.
function renderPending(s, m) {
  let li = pendingLine(m.ref);
  if (!li) {
    li = el("li", "msg mine pending");
    li.dataset.ref = m.ref;
    li.dataset.nickname = s.nickname;
    li.append(el("div", "bubble"));
    $("messages").append(li);
    $("messages").scrollTop = $("messages").scrollHeight;
  }
  if (li.dataset.editing) return; // the user is editing it: leave the input alone
  li.dataset.state = m.state;
  li.classList.toggle("failed", m.state === "failed");
  const bubble = li.querySelector(".bubble");
  const status = el("div", "pending-status");
  if (m.state === "failed") {
    status.append(el("span", "reason", `Not sent: ${m.error ? m.error.message : "refused"}`));
    status.append(actionButton("Retry", "retry", () => s.client.retry(m.ref)));
    status.append(actionButton("Edit", "edit", () => editPending(s, li, m)));
    status.append(actionButton("Discard", "discard", () => s.client.discard(m.ref)));
  } else {
    status.append(el("span", "reason", PENDING_TEXT[m.state] || m.state));
  }
  bubble.replaceChildren(el("div", "text", m.text), status);
}

function actionButton(label, action, onClick) {
  const b = el("button", "link-button", label);
  b.type = "button";
  b.dataset.action = action;
  b.addEventListener("click", onClick);
  return b;
}

// editPending turns a failed message into an input: Enter sends the edited
// text as a new message, Escape gives the failed one back.
function editPending(s, li, m) {
  const input = el("input", "edit");
  input.value = m.text;
  input.maxLength = 4000;
  input.setAttribute("aria-label", "Edit the message");
  li.dataset.editing = "true";
  li.querySelector(".bubble").replaceChildren(input);
  input.focus();
  input.addEventListener("keydown", (e) => {
    if (isSendKey(e) && input.value.trim() !== "") {
      e.preventDefault();
      delete li.dataset.editing;
      s.client.edit(m.ref, input.value);
    } else if (e.key === "Escape") {
      delete li.dataset.editing;
      renderPending(s, m);
    }
  });
}

// addNotice shows a notice; id is the room frame's it tells of, if any.
function addNotice(kind, text, time, id) {
  const t = parseTime(time) || new Date();
  const li = noticeLine(kind, text, t, id);
  append(li, t, false);
  return li;
}

// lastRoomLine is the log's last line before the user's pending messages.
function lastRoomLine() {
  const p = firstPending();
  return p ? p.previousElementSibling : $("messages").lastElementChild;
}

function noticeLine(kind, text, t, id) {
  const li = el("li", `notice ${kind}`);
  li.dataset.kind = kind;
  if (Number.isSafeInteger(id)) li.dataset.id = String(id);
  li.dataset.t = String(t.getTime());
  li.append(el("span", "text", text), timeElement(t));
  return li;
}

// Scrollback. The log's first line (li.older) says whether older messages
// are loading, can be loaded, or the room begins there; older messages go
// in below it, each before the first line of a later room frame.

const OLDER_TEXT = {
  loading: "Loading older messages…",
  error: "Older messages could not be loaded.",
  unavailable: "Older messages are not kept in this room.",
};

function olderLine() {
  const li = el("li", "older");
  li.id = "older";
  li.dataset.kind = "older";
  li.dataset.state = "none";
  li.append(el("span", "text"));
  return li;
}

// showOlder sets the state of the log's first line: none (not joined
// yet), idle (more to load), loading, beginning, error, unavailable.
function showOlder(state, room) {
  const li = $("older");
  if (li.dataset.state === state) return;
  li.dataset.state = state;
  li.setAttribute("aria-busy", String(state === "loading"));
  const text = li.querySelector(".text");
  text.textContent = state === "beginning" ? `This is the beginning of #${room}.` : OLDER_TEXT[state] || "";
  li.querySelector("button")?.remove();
  if (state === "idle" || state === "error") {
    li.append(actionButton(state === "idle" ? "Load older messages" : "Try again", "older",
      () => session && session.loadOlder(true)));
  }
}

// prependOlder puts the frames of a scrollback answer (oldest first, all
// older than the messages shown) in the log, among the notices older than
// those messages, then redraws the day separators and the groups.
function prependOlder(s, frames) {
  const list = $("messages");
  let next = $("older").nextElementSibling;
  for (const f of frames) {
    while (next && !next.classList.contains("pending") && !(next.dataset.id && Number(next.dataset.id) > f.id)) {
      next = next.nextElementSibling;
    }
    const t = parseTime(f.time);
    const li = f.type === "system"
      ? noticeLine("system", String(f.message ?? ""), t || new Date(), f.id)
      : messageLine(f, f.nickname === s.nickname);
    list.insertBefore(li, next);
  }
  redraw(list);
}

// redraw puts the day separators and the groups right after lines went in
// or out above the last ones.
function redraw(list) {
  redrawDays(list);
  for (const li of list.querySelectorAll("li.msg:not(.pending)")) group(li, li.previousElementSibling);
}

// redrawDays puts a day separator before the first line of every day.
function redrawDays(list) {
  for (const d of list.querySelectorAll("li.day")) d.remove();
  lastDay = "";
  for (const li of [...list.children]) {
    if (!li.dataset.t) continue;
    const t = new Date(Number(li.dataset.t));
    if (t.toDateString() !== lastDay) list.insertBefore(dayLine(t), li);
    lastDay = t.toDateString();
  }
}

function dayLine(t) {
  const d = el("li", "day");
  d.append(el("span", "", t.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" })));
  return d;
}

// keepPosition runs change, which puts lines of room frames up to the id
// newest in the log, and scrolls the log so that the first line in view
// after them (a message or a notice) stays where it was on the screen.
// Notices the page has from before its oldest message (its history on
// join keeps more of them) may be older: they move up with what is put in
// among them.
function keepPosition(newest, change) {
  const list = $("messages");
  const top = list.getBoundingClientRect().top;
  const anchor = [...list.children].find((li) => li.id !== "older" && !li.classList.contains("day") &&
    !(li.dataset.id && Number(li.dataset.id) <= newest) && li.getBoundingClientRect().bottom > top);
  const was = anchor ? anchor.getBoundingClientRect().top : 0;
  change();
  if (anchor && anchor.isConnected) list.scrollTop += anchor.getBoundingClientRect().top - was;
}

function renderMembers(s) {
  const ul = $("members");
  ul.replaceChildren(
    ...s.client.members.map((n) => {
      const li = el("li");
      li.dataset.nickname = n;
      li.append(avatar(n, "avatar small"), el("span", "name", n));
      if (n === s.nickname) li.append(el("span", "you", "you"));
      return li;
    }),
  );
  for (const c of document.querySelectorAll(".member-count")) c.textContent = String(s.client.members.length);
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status-text").textContent = text;
}

function showRetry(on) {
  $("retry").hidden = !on;
}

// The join form. The server checks the same rules (ValidateNickname, which
// is the PRECIS Nickname profile of RFC 8266, and ValidateRoomName) and
// answers HTTP 400, which a browser cannot read: the page checks them first,
// as closely as a page can.

// Characters the nickname profile refuses: controls, invisible format
// characters (zero-width space, BOM, soft hyphen, direction marks),
// private use, unassigned, default-ignorable (variation selectors). A
// zero-width (non-)joiner passes after a combining mark, as after a virama.
const BAD_NICKNAME = /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/u;
const JOINER_AFTER_MARK = /(?<=\p{M})[\u200C\u200D]/gu;
const ROOM_NAME = /^[\p{L}\p{Nd}\p{M}_.~-]+$/u;

// prepareNickname is what the server does to a nickname before showing it
// (PrepareNickname): every space becomes U+0020, spaces are trimmed and
// collapsed, then NFKC; until nothing changes.
function prepareNickname(s) {
  for (let i = 0, prev = ""; i < 4 && s !== prev; i++) {
    prev = s;
    s = s.replace(/\p{Zs}/gu, " ").replace(/ {2,}/g, " ").replace(/^ | $/g, "").normalize("NFKC");
  }
  return s;
}

// nicknameError checks a nickname as typed; the page then joins with its
// prepared form.
function nicknameError(raw) {
  if ((raw.isWellFormed && !raw.isWellFormed()) || BAD_NICKNAME.test(raw.replace(JOINER_AFTER_MARK, ""))) {
    return "That nickname has characters that are not allowed: controls, invisible characters, direction marks " +
      "(emoji such as ❤️ or 👨‍👩‍👧 hold invisible ones).";
  }
  const s = prepareNickname(raw);
  const n = Array.from(s).length;
  if (n === 0) return "Pick a nickname.";
  if (n > 64) return "A nickname has at most 64 characters.";
  if (s.toLowerCase().startsWith("unknown_")) return "Nicknames beginning with unknown_ are reserved.";
  return "";
}

function roomError(s) {
  const n = Array.from(s).length;
  if (n === 0) return "Pick a room.";
  if (n > 64) return "A room name has at most 64 characters.";
  if (!ROOM_NAME.test(s)) return "A room name has letters, digits and - _ . ~ only.";
  if (/^\.+$/.test(s)) return "A room name cannot be only dots.";
  return "";
}

function showJoinError(text) {
  $("join-error").textContent = text;
  $("join-error").hidden = !text;
}

let session = null;

function enterRoom(nickname, room) {
  $("join-view").hidden = true;
  $("chat-view").hidden = false;
  $("room-name").textContent = room;
  $("text").placeholder = `Message #${room}`;
  document.title = `#${room} · chatroom`;
  $("messages").replaceChildren(olderLine());
  lastDay = "";
  logWindow.reset();
  newMessages.clear();
  session = new Session(nickname, room);
  stayIn(nickname, room);
  renderMembers(session);
  $("text").focus();
}

function leaveRoom() {
  forget();
  if (session) session.leave();
  session = null;
  setStatus("idle", "not connected");
  $("chat-view").hidden = true;
  $("join-view").hidden = false;
  document.title = "chatroom";
  $("nickname").focus();
}

// refuseJoin goes back to the join form, saying why, for another try.
function refuseJoin(text) {
  leaveRoom();
  showJoinError(text);
  $("nickname").select();
}

function init() {
  try {
    $("nickname").value = localStorage.getItem(NICKNAME_KEY) || "";
  } catch {
    // Storage may be disabled; the nickname is just not remembered.
  }
  let room = "lobby";
  try {
    room = decodeURIComponent(location.hash.slice(1)) || room;
  } catch {
    // A malformed hash: keep the default.
  }
  $("room").value = room;

  $("join-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = $("nickname").value;
    const room = $("room").value.trim();
    const err = nicknameError(typed) || roomError(room);
    showJoinError(err);
    if (err) return;
    const nickname = prepareNickname(typed);
    try {
      localStorage.setItem(NICKNAME_KEY, nickname);
    } catch {
      // See above.
    }
    history.replaceState(null, "", `#${encodeURIComponent(room)}`);
    enterRoom(nickname, room);
  });

  $("send-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (text.trim() === "" || !session) return;
    session.send(text); // shown at once, pending, until the room takes it
    $("text").value = "";
  });

  setupComposer($("text"), $("send-form")); // after the submit listener above, which empties the field
  $("leave").addEventListener("click", leaveRoom);
  // Scrolled near the top, by any means (wheel, touch, keys in the focused log).
  $("messages").addEventListener("scroll", () => session && session.loadOlder(), { passive: true });
  $("retry").addEventListener("click", () => session && session.reconnectNow());
  window.addEventListener("online", () => session && session.reconnectNow());

  memberDrawer($("members-toggle"), $("members-panel"), $("members-close"));

  const nickname = location.hash.length > 1 ? stayed(room) : ""; // the address names the room
  if (nickname) enterRoom(nickname, room); // a reload: back in the room
  else $("nickname").focus();
}

init();
