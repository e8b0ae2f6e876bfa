'use strict';
// burst.js <url> <role> <burster> <count> <size> <withinMs>
//
// One client of a burst, in a process of its own as another user's client
// would be.
//
// role "read": join (send a hello and wait for its echo, which makes it
// certain that the client is a member), report {"event":"joined"}, then read
// until the <count> messages of <burster> have arrived.
//
// role "send": the burster, whose nickname in url must be <burster>.
// Once connected, it sends <count> frames of exactly <size> bytes
// ({"message":"<seq>:xxx…"}) in one synchronous for-loop, as a
// single-threaded JavaScript client does when it sends a batch: while the
// loop runs it cannot read. It reports {"event":"sent", ...} when the loop
// is over, then reads its own messages as the readers do.
//
// Each ends with
//
//   {"event":"result","received":10000,"disorder":null,"closed":null,"timedOut":false,"firstAt":…,"lastAt":…}
//
// received counts <burster>'s messages; disorder is the first one out of
// sequence ({"want":n,"got":m}), if any; closed is what the close event said
// if the server closed the connection first; timedOut is set if withinMs
// passed first. Times are epoch milliseconds (one machine, one clock).

const { frame, seqOf, report, closeInfo, intArg, usage, open, join, bound, fail } = require('./lib');

const args = process.argv.slice(2);
usage(args, 6, 'burst.js <url> <read|send> <burster> <count> <size> <withinMs>');
const [url, role, burster] = args;
const count = intArg(args[3], 'count');
const size = intArg(args[4], 'size');
const withinMs = intArg(args[5], 'withinMs');
if (role !== 'read' && role !== 'send') fail(`role must be read or send, not ${role}`);
bound(withinMs + 20_000, {});

// receive reads burster's messages until count have arrived, the server
// closes the connection, or withinMs passes; then it reports and exits.
function receive(ws, extra) {
  let received = 0;
  let disorder = null;
  let firstAt = null;
  let lastAt = null;
  let finished = false;
  const finish = (closed, timedOut) => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    report('result', { received, disorder, closed, timedOut, firstAt, lastAt, ...extra });
    if (closed) process.exit(0);
    ws.onclose = () => process.exit(0);
    ws.close(1000, 'done');
    setTimeout(() => process.exit(0), 5_000); // a close handshake that does not finish
  };
  const timer = setTimeout(() => finish(null, true), withinMs);
  ws.onmessage = (ev) => {
    const m = JSON.parse(ev.data);
    if (m.nickname !== burster) return;
    lastAt = Date.now();
    firstAt ??= lastAt;
    const seq = seqOf(m.message);
    if (seq !== received && disorder === null) disorder = { want: received, got: seq };
    received++;
    if (received === count) finish(null, false);
  };
  ws.onclose = (ev) => finish(closeInfo(ev), false);
}

(async () => {
  if (role === 'read') {
    const ws = await join(url, `hello from ${process.pid}`);
    report('joined', {});
    receive(ws, {});
    return;
  }
  const ws = await open(url);
  const loopStart = Date.now();
  for (let i = 0; i < count; i++) {
    ws.send(frame(i, size));
  }
  const loopEnd = Date.now();
  report('sent', { count, size, loopStart, loopEnd, bufferedAmount: ws.bufferedAmount });
  receive(ws, { loopStart, loopEnd });
})().catch(fail);
