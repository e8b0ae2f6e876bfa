// Unit tests of chatroom.js with a scripted WebSocket: node --test
// jsclient/chatroom_test.mjs (e2e/jsclient_test.go runs them). The browser
// tests in e2e/ drive the module against the real server.
import { test, mock } from "node:test";
import assert from "node:assert/strict";
import { ChatClient, ScrollbackError } from "./chatroom.js";

// FakeSocket is a WebSocket the test drives: it opens, receives and closes
// when told to.
class FakeSocket {
  static all = [];
  constructor(url) {
    this.url = new URL(url);
    this.sent = [];
    this.closed = null;
    FakeSocket.all.push(this);
  }
  static last() {
    return FakeSocket.all.at(-1);
  }
  send(data) {
    if (this.closed) throw new Error("closed");
    this.sent.push(JSON.parse(data));
  }
  close(code = 1005, reason = "") {
    if (this.closed) return;
    this.closed = { code, reason };
    this.onclose({ code, reason });
  }
  open() {
    this.onopen({});
  }
  recv(frame) {
    this.onmessage({ data: JSON.stringify(frame) });
  }
  // drop ends the connection as a lost network does.
  drop(code = 1006, reason = "") {
    this.closed = { code, reason };
    this.onclose({ code, reason });
  }
}

function newClient(extra = {}) {
  FakeSocket.all = [];
  const c = new ChatClient({ url: "ws://host/rooms/r/chat?nickname=ann", WebSocket: FakeSocket, ...extra });
  const events = [];
  for (const type of ["state", "message", "direct", "presence", "system", "error", "truncated", "outbox", "limited"]) {
    c.addEventListener(type, (e) => events.push({ ...e.detail, event: type }));
  }
  return { c, events, of: (type) => events.filter((e) => e.event === type) };
}

const msg = (id, nickname, message) => ({ type: "message", id, time: "2026-01-01T00:00:00.000Z", nickname, message });
const ack = (id, ref) => ({ type: "ack", id, time: "2026-01-01T00:00:00.000Z", ref });

test("a message typed offline is sent on open, and its echo waits for its ack", () => {
  const { c, of } = newClient();
  const m = c.send("hi");
  assert.equal(m.state, "sending");
  c.connect();
  const ws = FakeSocket.last();
  assert.equal(ws.url.searchParams.get("since"), null);
  assert.equal(ws.sent.length, 0);
  ws.open();
  assert.deepEqual(ws.sent, [{ message: "hi", ref: m.ref }]);
  ws.recv(msg(1024, "ann", "hi")); // the echo before the ack
  assert.equal(of("message").length, 0, "the echo was shown before its ack");
  ws.recv(ack(1024, m.ref));
  assert.equal(m.state, "sent");
  assert.equal(m.id, 1024);
  assert.equal(m.echoed, false);
  const shown = of("message");
  assert.equal(shown.length, 1);
  assert.equal(shown[0].ref, m.ref);
  assert.equal(shown[0].mine, true);
  assert.deepEqual(c.outbox, []);
  c.close();
});

test("an ack before the echo: the echo carries the ref", () => {
  const { c, of } = newClient();
  c.connect();
  const ws = FakeSocket.last();
  ws.open();
  const m = c.send("hi");
  ws.recv(ack(2048, m.ref));
  assert.equal(c.lastId, 0, "an ack moved the resume point past an echo not yet received");
  ws.recv(msg(2048, "ann", "hi"));
  assert.deepEqual(of("message").map((e) => e.ref), [m.ref]);
  c.close();
});

test("other frames wait behind a held echo, in order", () => {
  const { c, of } = newClient();
  c.connect();
  const ws = FakeSocket.last();
  ws.open();
  const m = c.send("same");
  ws.recv(msg(1024, "bob", "same")); // bob said the same thing first
  ws.recv(msg(2048, "ann", "same"));
  ws.recv(msg(3072, "bob", "after"));
  assert.equal(of("message").length, 0);
  ws.recv(ack(2048, m.ref));
  assert.deepEqual(of("message").map((e) => [e.frame.id, e.ref]), [[1024, undefined], [2048, m.ref], [3072, undefined]]);
  c.close();
});

test("a drop before the ack: resent with the same ref, resumed from the greatest id", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c, of } = newClient();
    c.connect();
    let ws = FakeSocket.last();
    ws.open();
    ws.recv({ type: "members", id: 512, time: "", members: ["ann"] });
    ws.recv(msg(1024, "bob", "one"));
    const m = c.send("two");
    ws.recv(msg(2048, "ann", "two")); // the echo; then the network fails
    ws.drop();
    assert.equal(c.state, "waiting");
    const wait = of("state").at(-1).retryIn;
    assert.ok(wait >= 250 && wait <= 500, `first retry in ${wait} ms`);
    mock.timers.tick(wait);
    ws = FakeSocket.last();
    assert.equal(ws.url.searchParams.get("since"), "2048");
    ws.open();
    assert.deepEqual(ws.sent, [{ message: "two", ref: m.ref }]);
    assert.equal(m.attempts, 2);
    ws.recv(msg(1024, "bob", "one")); // a replay: dropped
    ws.recv(ack(2048, m.ref)); // the room had it: the same id
    assert.deepEqual(of("message").map((e) => [e.frame.id, e.ref]), [[1024, undefined], [2048, m.ref]]);
    assert.deepEqual(c.outbox, []);
    c.close();
  } finally {
    mock.timers.reset();
  }
});

test("a refusal fails the message with its reason; retry keeps the ref, edit takes a new one", () => {
  const { c } = newClient();
  c.connect();
  const ws = FakeSocket.last();
  ws.open();
  const m = c.send("spam");
  ws.recv({ type: "error", id: 0, time: "", message: "rate limit exceeded", code: 1008, ref: m.ref });
  assert.equal(m.state, "failed");
  assert.deepEqual(m.error, { message: "rate limit exceeded", code: 1008 });
  assert.deepEqual(c.outbox, [m]);
  c.retry(m);
  assert.equal(m.state, "sending");
  assert.deepEqual(ws.sent.at(-1), { message: "spam", ref: m.ref });
  ws.recv({ type: "error", id: 0, time: "", message: "message refused", code: 1008, ref: m.ref });
  const n = c.edit(m, "ham");
  assert.notEqual(n.ref, m.ref);
  assert.deepEqual(ws.sent.at(-1), { message: "ham", ref: n.ref });
  assert.deepEqual(c.outbox, [n]);
  c.close();
});

test("a close for the message being read fails it instead of resending it forever", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c } = newClient();
    c.connect();
    const ws = FakeSocket.last();
    ws.open();
    const m = c.send("x".repeat(100));
    ws.drop(1009, "message too big");
    assert.equal(m.state, "failed");
    assert.equal(m.error.code, 1009);
    c.close();
  } finally {
    mock.timers.reset();
  }
});

test("at most maxInFlight messages are unanswered at once", () => {
  const { c } = newClient({ maxInFlight: 2 });
  c.connect();
  const ws = FakeSocket.last();
  ws.open();
  const ms = ["a", "b", "c"].map((t) => c.send(t));
  assert.equal(ws.sent.length, 2);
  ws.recv(ack(1024, ms[0].ref));
  assert.deepEqual(ws.sent.map((f) => f.message), ["a", "b", "c"]);
  c.close();
});

test("presence: the member list follows members, join and leave", () => {
  const { c, of } = newClient();
  c.connect();
  const ws = FakeSocket.last();
  ws.open();
  ws.recv({ type: "members", id: 1, time: "", members: ["ann", "bob"] });
  ws.recv({ type: "join", id: 1024, time: "", nickname: "cy" });
  ws.recv({ type: "leave", id: 2048, time: "", nickname: "bob" });
  assert.deepEqual(c.members, ["ann", "cy"]);
  assert.deepEqual(of("presence").map((e) => e.type), ["members", "join", "leave"]);
  c.close();
});

test("4009 on the first connection is final; on a reconnect it is retried", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c } = newClient();
    c.connect();
    FakeSocket.last().drop(4009, "nickname taken");
    assert.equal(c.state, "failed");

    const second = newClient().c;
    second.connect();
    let ws = FakeSocket.last();
    ws.open();
    ws.recv({ type: "members", id: 1, time: "", members: ["ann"] });
    ws.drop();
    mock.timers.tick(10000);
    FakeSocket.last().drop(4009, "nickname taken");
    assert.equal(second.state, "waiting");
    second.close();
  } finally {
    mock.timers.reset();
  }
});

test("the outbox survives a reload in storage; an old unconfirmed message is not resent by itself", () => {
  const store = new Map();
  const storage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const { c } = newClient({ storage, storageKey: "k" });
  const m = c.send("typed offline");
  const reloaded = newClient({ storage, storageKey: "k" }).c;
  assert.deepEqual(reloaded.outbox.map((e) => [e.ref, e.text, e.state]), [[m.ref, "typed offline", "sending"]]);

  const later = newClient({ storage, storageKey: "k", resendWindow: -1 }).c;
  assert.equal(later.outbox[0].state, "failed");
  later.discard(later.outbox[0]);
  assert.equal(store.has("k"), false);
  c.close();
});

test("an unanswered message closes a silent connection, which reconnects", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c } = newClient({ ackTimeout: 1000 });
    c.connect();
    const ws = FakeSocket.last();
    ws.open();
    c.send("anyone?");
    mock.timers.tick(1000);
    assert.deepEqual(ws.closed, { code: 4000, reason: "no answer" });
    assert.equal(c.state, "waiting");
    c.close();
  } finally {
    mock.timers.reset();
  }
});

const sys = (id, message) => ({ type: "system", id, time: "2026-01-01T00:00:00.000Z", message });
const history = (before, messages, more) => ({ type: "history", id: 9216, time: "", before, messages, more });

// joined opens a client that holds messages 4096 to 6144, after a join
// notice older than them all.
function joined(extra) {
  const t = newClient(extra);
  t.c.connect();
  const ws = FakeSocket.last();
  ws.open();
  ws.recv({ type: "join", id: 1024, time: "", nickname: "bob" }); // a notice: scrollback has none
  ws.recv(msg(4096, "bob", "four"));
  ws.recv(sys(5120, "five"));
  ws.recv(msg(6144, "bob", "six"));
  ws.recv({ type: "members", id: 6144, time: "", members: ["ann", "bob"] });
  return { ...t, ws };
}

test("loadOlder asks before the oldest message held, and again before the oldest it gave", async () => {
  const { c, ws } = joined();
  const first = c.loadOlder(2);
  assert.deepEqual(ws.sent.at(-1), { type: "history", before: 4096, limit: 2 });
  ws.recv(history(4096, [msg(2048, "bob", "two"), sys(3072, "three")], true));
  assert.deepEqual(await first, { messages: [msg(2048, "bob", "two"), sys(3072, "three")], more: true });
  assert.equal(c.atBeginning, false);

  const second = c.loadOlder();
  assert.deepEqual(ws.sent.at(-1), { type: "history", before: 2048, limit: 50 });
  ws.recv(history(2048, [msg(512, "bob", "one")], false));
  assert.deepEqual((await second).messages.map((m) => m.id), [512]);
  assert.equal(c.atBeginning, true);

  // Nothing is older: no request.
  const n = ws.sent.length;
  assert.deepEqual(await c.loadOlder(), { messages: [], more: false });
  assert.equal(ws.sent.length, n);
  assert.equal(c.lastId, 9216, "the answer's own id is the last room frame's");
  c.close();
});

test("loadOlder drops messages held already, and caps the limit", async () => {
  const { c, ws } = joined();
  const p = c.loadOlder(500);
  assert.equal(ws.sent.at(-1).limit, 100);
  ws.recv(msg(7168, "bob", "live, meanwhile")); // not older: no change
  ws.recv(history(4096, [msg(3072, "bob", "three"), msg(3072, "bob", "three"), msg(4096, "bob", "four"), msg(6144, "bob", "six"),
    { type: "join", id: 2048, time: "", nickname: "cy" }, { type: "message", id: "x" }, null], true));
  assert.deepEqual((await p).messages.map((m) => m.id), [3072]);
  c.close();
});

test("a second loadOlder while one waits returns the same promise and sends nothing", async () => {
  const { c, ws } = joined();
  const a = c.loadOlder();
  const n = ws.sent.length;
  const b = c.loadOlder();
  assert.equal(a, b);
  assert.equal(ws.sent.length, n);
  ws.recv(history(9999, [msg(1, "x", "not ours")], true)); // a late answer to another request: ignored
  ws.recv(history(4096, [msg(2048, "bob", "two")], true));
  assert.deepEqual((await b).messages.map((m) => m.id), [2048]);
  c.close();
});

test("a client holding no message asks for the newest", async () => {
  const { c } = newClient();
  c.connect();
  const ws = FakeSocket.last();
  ws.open();
  ws.recv({ type: "members", id: 1024, time: "", members: ["ann"] });
  const p = c.loadOlder(10);
  assert.deepEqual(ws.sent.at(-1), { type: "history", before: 0, limit: 10 });
  ws.recv(history(0, [msg(512, "bob", "one"), msg(1024, "bob", "two")], false));
  assert.deepEqual((await p).messages.map((m) => m.id), [512, 1024]);
  c.close();
});

test("loadOlder rejects when not connected, and when the connection closes first", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c } = newClient();
    await assert.rejects(c.loadOlder(), ScrollbackError);
    c.connect();
    let ws = FakeSocket.last();
    ws.open();
    ws.recv(msg(4096, "bob", "four"));
    const p = c.loadOlder();
    ws.drop(1006);
    await assert.rejects(p, (err) => err instanceof ScrollbackError && err.code === 1006);
    // The next connection asks again, from where it was.
    mock.timers.tick(10000);
    ws = FakeSocket.last();
    ws.open();
    const q = c.loadOlder();
    assert.deepEqual(ws.sent.at(-1), { type: "history", before: 4096, limit: 50 });
    ws.recv(history(4096, [], false));
    assert.deepEqual(await q, { messages: [], more: false });
    c.close();
  } finally {
    mock.timers.reset();
  }
});

test("an error frame without a ref answers the scrollback request, not a message", async () => {
  const { c, ws, of } = joined();
  const m = c.send("hi");
  const p = c.loadOlder();
  ws.recv({ type: "error", id: 6144, time: "", message: "history unavailable", code: 1011 });
  await assert.rejects(p, (err) => err.code === 1011 && err.message === "history unavailable");
  assert.equal(m.state, "sending");
  assert.equal(of("error").length, 0);
  c.close();
});

test("a room without scrollback: its close fails no message, and loadOlder does not ask again", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c, ws } = joined();
    const m = c.send("hi");
    const p = c.loadOlder();
    ws.drop(1007, 'expected {"message": string}');
    await assert.rejects(p, (err) => err.code === 1007);
    assert.equal(m.state, "sending", "the message was failed for the scrollback request's close");
    mock.timers.tick(10000);
    const next = FakeSocket.last();
    next.open();
    assert.deepEqual(next.sent, [{ message: "hi", ref: m.ref }]);
    await assert.rejects(c.loadOlder(), (err) => err.code === 1007);
    assert.deepEqual(next.sent, [{ message: "hi", ref: m.ref }]);
    c.close();
  } finally {
    mock.timers.reset();
  }
});

test("an unanswered scrollback request closes a silent connection; close() rejects one waiting", async () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const { c, ws } = joined({ ackTimeout: 1000 });
    const p = c.loadOlder();
    mock.timers.tick(1000);
    assert.deepEqual(ws.closed, { code: 4000, reason: "no answer" });
    await assert.rejects(p, (err) => err.code === 4000);
    mock.timers.tick(10000);
    FakeSocket.last().open();
    const q = c.loadOlder();
    c.close();
    await assert.rejects(q, ScrollbackError);
  } finally {
    mock.timers.reset();
  }
});

const members = (id, names, rate) => ({ type: "members", id, time: "2026-01-01T00:00:00.000Z", members: names, ...(rate && { rate }) });
const refusal = (id, ref, message, code) => ({ type: "error", id, time: "2026-01-01T00:00:00.000Z", message, code, ref });

test("a room that announces its rate limit is sent to at that pace, in order", () => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  try {
    const { c } = newClient({ maxInFlight: 100 });
    c.connect();
    const ws = FakeSocket.last();
    ws.open();
    ws.recv(members(1024, ["ann"], { perSecond: 2, burst: 3 }));
    assert.deepEqual(c.rate, { perSecond: 2, burst: 3 });
    const sent = Array.from({ length: 6 }, (_, i) => c.send(`m${i}`));
    assert.equal(ws.sent.length, 3, "the burst goes at once");
    mock.timers.tick(500); // 2 a second, kept to 90 %: not yet
    assert.equal(ws.sent.length, 3);
    mock.timers.tick(100);
    assert.equal(ws.sent.length, 4);
    mock.timers.tick(1200);
    assert.deepEqual(ws.sent.map((f) => f.message), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert.ok(sent.every((m) => m.state === "sending"), "none failed");
    c.close();
  } finally {
    mock.timers.reset();
  }
});

test("a rate-limit refusal with a known rate is sent again, not failed; without one it fails", () => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  try {
    const { c, of } = newClient();
    c.connect();
    const ws = FakeSocket.last();
    ws.open();
    ws.recv(members(1024, ["ann"], { perSecond: 10, burst: 2 }));
    const m = c.send("hi");
    ws.recv(refusal(1024, m.ref, "rate limit exceeded", 1008));
    assert.equal(m.state, "sending");
    assert.deepEqual(of("limited").map((e) => e.message.ref), [m.ref]);
    mock.timers.tick(200);
    assert.deepEqual(ws.sent.map((f) => f.ref), [m.ref, m.ref], "sent again with its ref");
    ws.recv(ack(2048, m.ref));
    assert.equal(m.state, "sent");
    c.close();

    const plain = newClient();
    plain.c.connect();
    const ws2 = FakeSocket.last();
    ws2.open();
    ws2.recv(members(1024, ["ann"]));
    assert.equal(plain.c.rate, null);
    const n = plain.c.send("hi");
    ws2.recv(refusal(1024, n.ref, "rate limit exceeded", 1008));
    assert.equal(n.state, "failed");
    plain.c.close();
  } finally {
    mock.timers.reset();
  }
});

test("frames sent before the rate is known count against it; a scrollback request too", async () => {
  mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 });
  try {
    const { c } = newClient();
    c.send("a");
    c.send("b");
    c.connect();
    const ws = FakeSocket.last();
    ws.open();
    assert.equal(ws.sent.length, 2, "unknown rate: sent at once");
    ws.recv(msg(1024, "bob", "old"));
    ws.recv(members(2048, ["ann", "bob"], { perSecond: 1, burst: 4 }));
    const older = c.loadOlder(10);
    c.send("c");
    c.send("d");
    assert.deepEqual(ws.sent.map((f) => f.message ?? f.type), ["a", "b", "history", "c"]);
    mock.timers.tick(1200);
    assert.deepEqual(ws.sent.map((f) => f.message ?? f.type), ["a", "b", "history", "c", "d"]);
    c.close();
    await assert.rejects(older, ScrollbackError);
  } finally {
    mock.timers.reset();
  }
});
