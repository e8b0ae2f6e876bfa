// The chat page of examples/chat: plain JavaScript, no build step.
//
// It speaks the envelope protocol of PROTOCOL.md to /rooms/{room}/chat:
// history on join, the member list, join and leave notices, and resume with
// ?since=<greatest id seen> after a lost connection.
//
// Everything that comes from the network is rendered with textContent (or
// as an attribute value), never parsed as HTML.
"use strict";

const MIN_DELAY = 500; // ms before the first reconnect; doubles per failure
const MAX_DELAY = 10000; // ms, the most a reconnect waits
const CONNECT_TIMEOUT = 10000; // ms a connection may take to open
const GROUP_WINDOW = 5 * 60 * 1000; // messages of one sender this close share a header
const NICKNAME_KEY = "chatroom.nickname";

const $ = (id) => document.getElementById(id);

// One visit to one room: the connection, its reconnects and what they resume.
class Session {
  constructor(nickname, room) {
    this.nickname = nickname;
    this.room = room;
    this.ws = null;
    this.lastId = 0; // greatest frame id seen: where a reconnect resumes
    this.attempt = 0; // failed connections since the last good one
    this.timer = 0; // pending reconnect
    this.ticker = 0; // countdown of the pending reconnect
    this.lost = false; // a connection that was open has closed
    this.resuming = false; // this connection asked for ?since=
    this.joined = false; // a connection of this visit has joined (received a frame)
    this.members = [];
    this.left = false;
  }

  url() {
    const q = new URLSearchParams({ nickname: this.nickname });
    if (this.lastId > 0) q.set("since", String(this.lastId));
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    return `${scheme}//${location.host}/rooms/${encodeURIComponent(this.room)}/chat?${q}`;
  }

  connect() {
    this.stopWaiting();
    if (this.left || this.ws) return;
    this.resuming = this.lastId > 0;
    const ws = new WebSocket(this.url());
    this.ws = ws;
    let opened = false;
    setStatus(this.lost || this.attempt > 0 ? "reconnecting" : "connecting",
      this.lost || this.attempt > 0 ? "Reconnecting…" : "Connecting…");
    const timeout = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) ws.close(); // fails it: onclose follows
    }, CONNECT_TIMEOUT);
    ws.onopen = () => {
      clearTimeout(timeout);
      if (this.ws !== ws) return;
      opened = true;
      setStatus("connected", `Connected as ${this.nickname}`);
      setSendEnabled(true);
    };
    ws.onmessage = (e) => {
      if (this.ws === ws) this.receive(e.data);
    };
    ws.onclose = (e) => {
      clearTimeout(timeout);
      if (this.ws !== ws) return;
      this.ws = null;
      setSendEnabled(false);
      if (this.left) return;
      this.closed(e, opened);
    };
  }

  closed(e, opened) {
    if (e.code === 4009) {
      if (!this.joined) {
        // The first connection: someone in the room has this nickname.
        refuseJoin(`“${this.nickname}” is already in #${this.room} (nickname taken). Pick another nickname.`);
        return;
      }
      // A reconnect: most likely the room still holds this page's own old
      // connection, which it drops once its keepalive times out (about 45 s
      // after a network cut). Keep trying, with the usual backoff.
      this.reconnectLater("Waiting for the old connection to expire. Retrying");
      return;
    }
    const why = closeText(e);
    if (opened) {
      this.lost = true;
      addNotice("status", `Connection lost${why ? ` (${why})` : ""}. Reconnecting…`);
    }
    // Refusals that a retry would only repeat.
    if (e.code === 4001 || (e.code === 1008 && e.reason === "join refused")) {
      setStatus("failed", `Disconnected: ${e.reason || e.code}`);
      showRetry(true);
      return;
    }
    this.reconnectLater();
  }

  // reconnectLater waits with exponential backoff and jitter, so that a
  // restarted server is not stormed by every page at once. why begins the
  // status shown meanwhile.
  reconnectLater(why = "Offline. Reconnecting") {
    const ceiling = Math.min(MAX_DELAY, MIN_DELAY * 2 ** this.attempt);
    const delay = Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
    this.attempt++;
    const at = Date.now() + delay;
    const show = () => {
      const s = Math.max(1, Math.ceil((at - Date.now()) / 1000));
      setStatus("reconnecting", `${why} in ${s} s…`);
    };
    show();
    showRetry(true);
    this.ticker = setInterval(show, 1000);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  // reconnectNow skips the wait, e.g. when the browser comes back online.
  reconnectNow() {
    if (this.left || this.ws) return;
    this.attempt = 0;
    this.connect();
  }

  stopWaiting() {
    clearTimeout(this.timer);
    clearInterval(this.ticker);
    this.timer = this.ticker = 0;
    showRetry(false);
  }

  leave() {
    this.left = true;
    this.stopWaiting();
    if (this.ws) this.ws.close(1000, "left");
    this.ws = null;
  }

  send(text) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ message: text }));
    return true;
  }

  receive(data) {
    let f;
    try {
      f = JSON.parse(data);
    } catch {
      return;
    }
    if (f === null || typeof f !== "object") return;
    // Resume from the greatest id seen: replayed frames keep their ids,
    // the member list and notices take new ones (PROTOCOL.md, section 5).
    if (Number.isSafeInteger(f.id) && f.id > this.lastId) this.lastId = f.id;
    this.attempt = 0;
    this.joined = true; // a refused connection receives no frame, only its close
    const me = f.nickname === this.nickname;
    switch (f.type) {
      case "message":
        addMessage(f, me);
        break;
      case "join":
        this.memberIn(f.nickname);
        if (!me) addNotice("join", `${f.nickname} joined`, f.time);
        else if (!this.resuming) addNotice("join", `You joined #${this.room}`, f.time);
        break;
      case "leave":
        this.memberOut(f.nickname);
        if (!me) addNotice("leave", `${f.nickname} left`, f.time);
        break;
      case "members":
        this.members = Array.isArray(f.members) ? f.members.filter((n) => typeof n === "string") : [];
        renderMembers(this);
        if (this.resuming) addNotice("status", "Reconnected", f.time);
        this.lost = false;
        break;
      case "system":
        addNotice("system", String(f.message ?? ""), f.time);
        break;
      case "error":
        addNotice("error", `Not sent: ${f.message ?? "refused"}`, f.time);
        break;
      case "truncated":
        addNotice("truncated", "Some messages from while you were away are no longer available " +
          "(the server restarted or the room's history ran out).", f.time);
        break;
      default:
      // A type this page does not know: ignore it, as PROTOCOL.md asks.
    }
  }

  memberIn(nickname) {
    if (typeof nickname === "string" && !this.members.includes(nickname)) {
      this.members.push(nickname);
      renderMembers(this);
    }
  }

  memberOut(nickname) {
    const i = this.members.indexOf(nickname);
    if (i >= 0) {
      this.members.splice(i, 1);
      renderMembers(this);
    }
  }
}

function closeText(e) {
  if (e.code === 1006 || e.code === 1005) return "";
  return e.reason ? `${e.code} ${e.reason}` : String(e.code);
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

// hue gives each nickname its own colour.
function hue(nickname) {
  let h = 0;
  for (const c of nickname) h = (h * 31 + c.codePointAt(0)) % 360;
  return h;
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

function append(li, t, force) {
  const list = $("messages");
  const stick = force || list.scrollHeight - list.scrollTop - list.clientHeight < 80;
  if (t) {
    const day = t.toDateString();
    if (day !== lastDay) {
      lastDay = day;
      const d = el("li", "day");
      d.append(el("span", "", t.toLocaleDateString([], { weekday: "long", month: "long", day: "numeric" })));
      list.append(d);
    }
  }
  list.append(li);
  if (stick) list.scrollTop = list.scrollHeight;
}

function addMessage(f, mine) {
  const nickname = String(f.nickname ?? "");
  const t = parseTime(f.time);
  const li = el("li", mine ? "msg mine" : "msg");
  li.dataset.nickname = nickname;
  li.style.setProperty("--hue", String(hue(nickname)));
  if (Number.isSafeInteger(f.id)) li.dataset.id = String(f.id);
  if (t) li.dataset.t = String(t.getTime());
  const prev = $("messages").lastElementChild;
  if (prev && prev.classList.contains("msg") && prev.dataset.nickname === nickname && t &&
    t.getTime() - Number(prev.dataset.t) < GROUP_WINDOW) {
    li.classList.add("cont");
  }
  if (!mine) li.append(avatar(nickname, "avatar"));
  const bubble = el("div", "bubble");
  const meta = el("div", "meta");
  meta.append(el("span", "nick", nickname), timeElement(t));
  bubble.append(meta, el("div", "text", String(f.message ?? "")));
  li.append(bubble);
  append(li, t, mine);
}

function addNotice(kind, text, time) {
  const t = parseTime(time) || new Date();
  const li = el("li", `notice ${kind}`);
  li.dataset.kind = kind;
  li.append(el("span", "text", text), timeElement(t));
  append(li, t, false);
}

function renderMembers(s) {
  const ul = $("members");
  ul.replaceChildren(
    ...s.members.map((n) => {
      const li = el("li");
      li.dataset.nickname = n;
      li.append(avatar(n, "avatar small"), el("span", "name", n));
      if (n === s.nickname) li.append(el("span", "you", "you"));
      return li;
    }),
  );
  for (const c of document.querySelectorAll(".member-count")) c.textContent = String(s.members.length);
}

function setStatus(state, text) {
  $("status").dataset.state = state;
  $("status-text").textContent = text;
}

function showRetry(on) {
  $("retry").hidden = !on;
}

function setSendEnabled(on) {
  $("send").disabled = !on;
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
  $("messages").replaceChildren();
  lastDay = "";
  session = new Session(nickname, room);
  renderMembers(session);
  session.connect();
  $("text").focus();
}

function leaveRoom() {
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
    if (text.trim() === "" || !session || !session.send(text)) return;
    $("text").value = "";
  });

  $("leave").addEventListener("click", leaveRoom);
  $("retry").addEventListener("click", () => session && session.reconnectNow());
  window.addEventListener("online", () => session && session.reconnectNow());

  $("members-toggle").addEventListener("click", () => {
    const open = $("members-panel").classList.toggle("open");
    $("members-toggle").setAttribute("aria-expanded", String(open));
  });

  $("nickname").focus();
}

init();
