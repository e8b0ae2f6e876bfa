'use strict';
// What the scripts share. Each script is one or more WebSocket clients of
// examples/chat's tutorial room (/chat): they send {"message": "..."} and
// receive {"nickname": "...", "message": "..."}. A script reports on
// stdout, one JSON object a line, each with an "event" field; the Go tests
// (e2e/node_test.go) read those lines. Anything on stderr is a failure of the
// script itself.

const WebSocket = require('ws');

// The bytes of {"message":""}: a frame of n bytes carries n - OVERHEAD
// characters of text.
const OVERHEAD = '{"message":""}'.length;

// report writes one line for the Go test.
function report(event, fields) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

// frame returns a client frame of exactly size bytes (ASCII) whose text
// begins with "<seq>:", so that a receiver can check the order.
function frame(seq, size) {
  const head = seq + ':';
  const text = head + 'x'.repeat(Math.max(0, size - OVERHEAD - head.length));
  return JSON.stringify({ message: text });
}

// seqOf returns the sequence number a frame's text begins with, or -1.
function seqOf(text) {
  const i = text.indexOf(':');
  if (i <= 0) return -1;
  const n = Number(text.slice(0, i));
  return Number.isInteger(n) ? n : -1;
}

// closeInfo is what a close event tells: what a browser's onclose sees.
function closeInfo(ev) {
  return { code: ev.code, reason: ev.reason, wasClean: ev.wasClean };
}

// intArg parses a positive integer argument, or exits with a usage error.
function intArg(s, name) {
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n <= 0) {
    process.stderr.write(`${name} must be a positive integer, not ${JSON.stringify(s)}\n`);
    process.exit(2);
  }
  return n;
}

// usage exits with a usage error unless args has at least n elements.
function usage(args, n, text) {
  if (args.length < n) {
    process.stderr.write(`usage: node ${text}\n`);
    process.exit(2);
  }
}

// open connects to url and resolves with the WebSocket once it is open, or
// rejects if it closes or fails first. options are ws's, if given.
function open(url, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    const fail = (what) => (ev) => {
      ws.onopen = ws.onclose = ws.onerror = null;
      reject(new Error(`${url}: ${what} before open: ${ev.message || ev.code || ''}`));
    };
    ws.onopen = () => {
      ws.onopen = ws.onclose = ws.onerror = null;
      resolve(ws);
    };
    ws.onerror = fail('error');
    ws.onclose = fail('closed');
  });
}

// join opens a connection to url and sends a hello whose echo proves the
// client is a member: from then on it receives every message the room
// broadcasts. It resolves with the WebSocket.
async function join(url, hello) {
  const ws = await open(url);
  await new Promise((resolve, reject) => {
    ws.onmessage = (ev) => {
      if (JSON.parse(ev.data).message === hello) {
        ws.onmessage = ws.onclose = null;
        resolve();
      }
    };
    ws.onclose = (ev) => reject(new Error(`closed before joining: ${JSON.stringify(closeInfo(ev))}`));
    ws.send(JSON.stringify({ message: hello }));
  });
  return ws;
}

// bound ends the process with a "timeout" line if it is still running
// after ms: every script is bounded in time as well as in count. The timer
// does not keep the process alive.
function bound(ms, fields) {
  setTimeout(() => {
    report('timeout', { afterMs: ms, ...(typeof fields === 'function' ? fields() : fields) });
    process.exit(3);
  }, ms).unref();
}

// fail reports an error of the script and exits.
function fail(err) {
  process.stderr.write(`${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
}

module.exports = { WebSocket, OVERHEAD, report, frame, seqOf, closeInfo, intArg, usage, open, join, bound, fail };
