'use strict';
// flood.js <url> honest <flooder> <maxMs> [framesPerSec]
// flood.js <url> flood <count> <size> <forMs> <reading|deaf>
//
// One client of a flood, in a process of its own.
//
// role "flood": the attacker. Once connected it sends up to <count> frames of
// exactly <size> bytes ({"message":"<seq>:xxx…"}) for at most <forMs>, as
// fast as the connection takes them: chunks of 256 frames, each followed by
// a turn of the event loop, and none while more than 1 MiB waits in its
// send buffer, so that it never buffers more than that. "reading" keeps
// reading (and discarding) what the room sends it, as an attacker who means
// to stay in the room does; "deaf" reads nothing while it floods (the
// connection is paused), and only afterwards, to see how the server closed
// it. Then it closes with 1000 and reports
//
//   {"event":"result","sent":…,"startAt":…,"endAt":…,"received":…,"closed":{…},"closedAt":…,"closedDuringFlood":false}
//
// role "honest": a member who only chats. It joins (a hello, and its echo),
// reports {"event":"joined"}, then reads everything and measures the
// frames of <flooder>. With [framesPerSec] it reads no faster than that on
// average, as a client that does real work for each message (a page that
// renders it, on a phone) does; without, as fast as it can. Every 200 ms it sends a probe and measures how long
// its echo takes: how long the member's own messages take to get through.
// When stdin ends (or a line "stop" arrives on it), it sends a last
// message and waits for its echo: every member sees the room's messages in
// the same order, so by then it has received whatever the room broadcast
// before. It reports
//
//   {"event":"result","flood":…,"firstAt":…,"lastAt":…,"perSecond":[…],"maxGapMs":…,"disorder":null,
//    "probes":{"sent":…,"echoed":…,"medianMs":…,"maxMs":…},"closed":null,"synced":true}
//
// closed is what the close event said if the server closed the connection.
// Times are epoch milliseconds; <maxMs> bounds the whole run.

const { frame, seqOf, report, closeInfo, intArg, usage, open, join, bound, fail } = require('./lib');

const args = process.argv.slice(2);
usage(args, 2, 'flood.js <url> honest <flooder> <maxMs> [framesPerSec] | flood.js <url> flood <count> <size> <forMs> <reading|deaf>');
const [url, role] = args;

if (role === 'honest') {
  usage(args, 4, 'flood.js <url> honest <flooder> <maxMs> [framesPerSec]');
  const framesPerSec = args.length > 4 ? intArg(args[4], 'framesPerSec') : 0;
  honest(args[2], intArg(args[3], 'maxMs'), framesPerSec).catch(fail);
} else if (role === 'flood') {
  usage(args, 6, 'flood.js <url> flood <count> <size> <forMs> <reading|deaf>');
  const mode = args[5];
  if (mode !== 'reading' && mode !== 'deaf') fail(`mode must be reading or deaf, not ${mode}`);
  flood(intArg(args[2], 'count'), intArg(args[3], 'size'), intArg(args[4], 'forMs'), mode).catch(fail);
} else {
  fail(`role must be honest or flood, not ${role}`);
}

async function flood(count, size, forMs, mode) {
  const chunk = 256;
  const highWater = 1 << 20;
  bound(forMs + 30_000, {});
  const ws = await open(url);
  let received = 0;
  let closed = null;
  let closedAt = null;
  const closedEvent = new Promise((resolve) => {
    ws.onclose = (ev) => {
      closed = closeInfo(ev);
      closedAt = Date.now();
      resolve();
    };
  });
  ws.onmessage = () => received++;
  if (mode === 'deaf') ws.pause();

  const startAt = Date.now();
  let sent = 0;
  await new Promise((resolve) => {
    const pump = () => {
      if (sent >= count || closed || Date.now() - startAt >= forMs) return resolve();
      if (ws.bufferedAmount < highWater) {
        for (let k = 0; k < chunk && sent < count; k++) ws.send(frame(sent++, size));
      }
      setImmediate(pump); // lets the event loop read (unless deaf) and write
    };
    pump();
  });
  const endAt = Date.now();
  const closedDuringFlood = closed !== null;
  if (!closed) {
    ws.resume();
    ws.close(1000, 'done');
    await Promise.race([closedEvent, new Promise((r) => setTimeout(r, 10_000))]);
  }
  report('result', { mode, sent, startAt, endAt, received, closed, closedAt, closedDuringFlood });
  process.exit(0);
}

// pacer returns a function to call for each frame read, which pauses ws as
// long as it takes to bring the reads back to perSec on average: a token
// bucket that may go into debt, since frames already received arrive even
// while the connection is paused. perSec 0 paces nothing.
function pacer(ws, perSec) {
  if (!perSec) return () => {};
  let tokens = perSec / 10; // a tenth of a second's worth at once
  let at = Date.now();
  let paused = false;
  return () => {
    const now = Date.now();
    tokens = Math.min(perSec / 10, tokens + ((now - at) * perSec) / 1000) - 1;
    at = now;
    if (tokens >= 0 || paused) return;
    paused = true;
    ws.pause();
    setTimeout(() => {
      paused = false;
      ws.resume();
    }, Math.ceil((-tokens * 1000) / perSec));
  };
}

async function honest(flooder, maxMs, framesPerSec) {
  const probeEveryMs = 200;
  const ws = await join(url, `hello from ${process.pid}`);
  report('joined', {});

  let flood = 0;
  let firstAt = null;
  let lastAt = null;
  let maxGapMs = 0;
  let lastSeq = -1;
  let disorder = null;
  const perSecond = [];
  const probeSent = new Map(); // probe text -> when it was sent
  const latencies = [];
  const stopText = `stop from ${process.pid}`;
  let closed = null;
  let finished = false;
  bound(maxMs, () => ({ flood, firstAt, lastAt, perSecond, probes: latencies.length, closed }));

  const finish = (synced) => {
    if (finished) return;
    finished = true;
    clearInterval(prober);
    latencies.sort((a, b) => a - b);
    const probes = {
      sent: probeSent.size + latencies.length,
      echoed: latencies.length,
      medianMs: latencies.length ? latencies[Math.floor(latencies.length / 2)] : null,
      maxMs: latencies.length ? latencies[latencies.length - 1] : null,
    };
    report('result', { flood, firstAt, lastAt, perSecond, maxGapMs, disorder, probes, closed, synced });
    if (closed) process.exit(0);
    ws.onclose = () => process.exit(0);
    ws.close(1000, 'done');
    setTimeout(() => process.exit(0), 5_000); // a close handshake that does not finish
  };

  const pace = pacer(ws, framesPerSec);
  ws.onmessage = (ev) => {
    pace();
    const now = Date.now();
    const m = JSON.parse(ev.data);
    if (m.nickname === flooder) {
      if (lastAt !== null) maxGapMs = Math.max(maxGapMs, now - lastAt);
      firstAt ??= now;
      lastAt = now;
      const s = Math.floor((now - firstAt) / 1000);
      while (perSecond.length <= s) perSecond.push(0);
      perSecond[s]++;
      flood++;
      const seq = seqOf(m.message);
      if (seq <= lastSeq && disorder === null) disorder = { after: lastSeq, got: seq };
      lastSeq = seq;
      return;
    }
    if (m.message === stopText) return finish(true);
    const at = probeSent.get(m.message);
    if (at !== undefined) {
      probeSent.delete(m.message);
      latencies.push(now - at);
    }
  };
  ws.onclose = (ev) => {
    closed = closeInfo(ev);
    finish(false);
  };

  let probes = 0;
  const prober = setInterval(() => {
    if (probes >= Math.ceil(maxMs / probeEveryMs)) return; // bounded in count too
    const text = `probe ${process.pid} ${probes++}`;
    probeSent.set(text, Date.now());
    ws.send(JSON.stringify({ message: text }));
  }, probeEveryMs);

  let stopping = false;
  const stop = () => {
    if (stopping || finished) return;
    stopping = true;
    clearInterval(prober);
    ws.send(JSON.stringify({ message: stopText }));
  };
  let input = '';
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d) => {
    input += d;
    if (input.split('\n').includes('stop')) stop();
  });
  process.stdin.on('end', stop);
}
