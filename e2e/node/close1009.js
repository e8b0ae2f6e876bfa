'use strict';
// close1009.js <url> <bytes> <runs>
//
// runs times, one after the other, each on a new connection: connect to url,
// send one text frame of exactly <bytes> bytes ({"message":"0:xxx…"}), send
// nothing more, and wait for the close event. One line a run:
//
//   {"event":"close","run":0,"code":1009,"reason":"…","wasClean":true,"ms":12,"errors":[]}
//
// ms is from the send to the close event; errors are the messages of any
// error events before it (ECONNRESET, EPIPE: the server reset the
// connection). A run that sees no close event within runTimeoutMs is
// terminated and reported with "timedOut": true and code null. Then
// {"event":"done"}. It does not offer permessage-deflate.

const { frame, report, closeInfo, intArg, usage, open, bound, fail } = require('./lib');

const runTimeoutMs = 30_000;

const args = process.argv.slice(2);
usage(args, 3, 'close1009.js <url> <bytes> <runs>');
const [url] = args;
const bytes = intArg(args[1], 'bytes');
const runs = intArg(args[2], 'runs');
bound(runs * runTimeoutMs + 10_000, {});

// One run: resolves with what the close event said.
async function run(msg) {
  // Uncompressed: the message's bytes must be on the wire while the room
  // closes (ws would deflate the x's to almost nothing; deflate.js sends
  // that case).
  const ws = await open(url, { perMessageDeflate: false });
  return new Promise((resolve) => {
    const errors = [];
    let sentAt = 0;
    const timer = setTimeout(() => {
      ws.onclose = null;
      ws.terminate();
      resolve({ code: null, reason: '', wasClean: false, ms: Date.now() - sentAt, errors, timedOut: true });
    }, runTimeoutMs);
    ws.onerror = (ev) => errors.push(ev.message);
    ws.onclose = (ev) => {
      clearTimeout(timer);
      resolve({ ...closeInfo(ev), ms: Date.now() - sentAt, errors });
    };
    sentAt = Date.now();
    ws.send(msg);
  });
}

(async () => {
  const msg = frame(0, bytes); // built once: 64 MiB strings are not free
  if (Buffer.byteLength(msg) !== bytes) throw new Error(`built ${Buffer.byteLength(msg)} bytes, want ${bytes}`);
  for (let i = 0; i < runs; i++) {
    report('close', { run: i, ...(await run(msg)) });
  }
  report('done', {});
})().catch(fail);
