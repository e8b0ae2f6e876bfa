'use strict';
// deflate.js <url> <bytes>
//
// A client that compresses: connects to url offering permessage-deflate,
// as ws does by default, and compresses everything it sends (threshold 0).
// It sends a message of <bytes> bytes ({"message":"0:xxx…"}) and a short
// one, and reports the negotiated extension, each echo as it came and the
// bytes read from the TCP connection meanwhile:
//
//   {"event":"negotiated","extensions":"permessage-deflate; …"}
//   {"event":"echo","seq":0,"size":1024,"wireBytes":123}
//   {"event":"echo","seq":1,"size":20,"wireBytes":24}
//
// Then it sends a compression bomb, a message of 64 MiB of spaces that ws
// compresses to about 64 KiB, and reports how the room closed:
//
//   {"event":"close","code":1009,"reason":"message too big","wasClean":true}

const net = require('net');
const { WebSocket, frame, report, closeInfo, intArg, usage, bound, fail } = require('./lib');

const args = process.argv.slice(2);
usage(args, 2, 'deflate.js <url> <bytes>');
const [url] = args;
const bytes = intArg(args[1], 'bytes');
bound(60_000, {});

let socket = null;
const ws = new WebSocket(url, {
  perMessageDeflate: { threshold: 0, clientNoContextTakeover: true },
  // The TCP connection, kept to read its bytesRead: what the room sent.
  createConnection: (opts) => (socket = net.connect(opts)),
});

let extensions = '';
ws.on('upgrade', (res) => (extensions = res.headers['sec-websocket-extensions'] || ''));
ws.on('error', fail);
ws.on('open', () => {
  report('negotiated', { extensions });
  const sent = [frame(0, bytes), JSON.stringify({ message: '1:hi' })];
  let seq = 0;
  let before = socket.bytesRead;
  ws.on('message', (data) => {
    const text = data.toString();
    const want = JSON.parse(sent[seq]).message;
    const got = JSON.parse(text);
    if (got.message !== want) fail(new Error(`echo ${seq}: ${text.slice(0, 80)}…, want ${want.slice(0, 80)}…`));
    report('echo', { seq, size: Buffer.byteLength(text), wireBytes: socket.bytesRead - before });
    before = socket.bytesRead;
    seq++;
    if (seq < sent.length) {
      ws.send(sent[seq]);
    } else if (seq === sent.length) {
      ws.send(JSON.stringify({ message: ' '.repeat(64 << 20) }));
    }
  });
  ws.send(sent[0]);
});
ws.onclose = (ev) => {
  report('close', closeInfo(ev));
  process.exit(0);
};
