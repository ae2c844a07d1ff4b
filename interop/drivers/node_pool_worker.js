'use strict';
// A Node.js request server for the pool tests, on the plain connect()/onmessage API: one
// reply per request, in order. Usage: node node_pool_worker.js served|raw
//   Each request is msgpack {op, data}: "hash" answers msgpack {pid, sha256: hex of data},
//   "throw" fails with TypeError(data), "crash" SIGKILLs the process.
//   served: replies follow spec/requests.md (0x00 + result, or 0x01 + JSON error report);
//   raw: replies are the bare msgpack result (an error report is msgpack {error}).
const crypto = require('node:crypto');
const { encode, decode } = require('@msgpack/msgpack');
const { connect } = require('../node');

const served = process.argv[2] === 'served';

function handle(message) {
  const { op, data } = decode(message);
  if (op === 'crash') process.kill(process.pid, 'SIGKILL');
  if (op === 'throw') throw new TypeError(String(data));
  return Buffer.from(encode({ pid: process.pid, sha256: crypto.createHash('sha256').update(data).digest('hex') }));
}

function reply(message) {
  try {
    const result = handle(message);
    return served ? Buffer.concat([Buffer.from([0x00]), result]) : result;
  } catch (err) {
    if (!served) return Buffer.from(encode({ error: err.message }));
    const report = JSON.stringify({ type: err.name, message: err.message, traceback: err.stack || '' });
    return Buffer.concat([Buffer.from([0x01]), Buffer.from(report, 'utf8')]);
  }
}

connect().then((conn) => {
  conn.onmessage = (message) => conn.send(reply(message));
});
