'use strict';
// A Node.js worker (interop/node connect()) driven into faults; the counterpart of
// lib_worker.py. Usage: node node_worker.js BEHAVIOUR [CODE]. Reports: JSON lines on stdout.
// $WP_LIMIT and $WP_HANDSHAKE_TIMEOUT (ms) set connect()'s maxMessageSize and handshakeTimeout.

const path = require('node:path');
const { connect } = require(path.resolve(__dirname, '..', '..', '..', 'interop', 'node'));

function report(fields) {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

function describe(err) {
  const out = { type: err.constructor.name, message: err.message, code: err.code };
  for (const key of ['expected', 'got', 'length', 'limit', 'stage', 'missing']) {
    if (err[key] !== undefined) out[key] = err[key];
  }
  return out;
}

async function main(behaviour, arg) {
  if (behaviour === 'probe') {
    try {
      await connect({ handshakeTimeout: 1000 });
    } catch (err) {
      report({ event: 'unavailable', error: describe(err) });
      process.exit(4);
    }
    report({ event: 'connected' });
    return;
  }
  const options = {};
  if (process.env.WP_LIMIT) options.maxMessageSize = Number(process.env.WP_LIMIT);
  if (process.env.WP_HANDSHAKE_TIMEOUT) options.handshakeTimeout = Number(process.env.WP_HANDSHAKE_TIMEOUT);
  const conn = await connect(options);
  report({ event: 'ready', pid: process.pid });
  if (behaviour === 'recv') {
    const messages = [];
    for await (const m of conn) messages.push(m.toString('hex'));
    report({ event: 'done', messages, end: { type: 'EndOfStream' } });
  } else if (behaviour === 'idle') {
    for await (const m of conn) void m;
  } else if (behaviour === 'flood') {
    const payload = Buffer.alloc(65536, 0x66);
    let reported = false;
    for (;;) {
      const sending = conn.send(payload);
      const timer = setTimeout(() => {
        if (!reported) {
          reported = true;
          report({ event: 'blocked', pid: process.pid });
        }
      }, 300);
      await sending;
      clearTimeout(timer);
    }
  } else if (behaviour === 'crash-on-command') {
    for (let i = 0; i < 3; i++) await conn.send(Buffer.from(`m${i}`));
    for await (const m of conn) {
      const command = m.toString();
      if (command === 'sigkill') process.kill(process.pid, 'SIGKILL');
      else if (command === 'sigsegv') process.kill(process.pid, 'SIGSEGV');
      else if (command === 'abort') process.abort();
      else if (command === 'exit137') process.exit(137);
      else throw new Error(`unknown command ${command}`);
    }
  } else if (behaviour === 'finish-exit') {
    await conn.send(Buffer.from('bye'));
    await conn.finish();
    process.exit(Number(arg || 0));
  } else if (behaviour === 'ignore-term' || behaviour === 'linger-after-eof') {
    if (behaviour === 'ignore-term') process.on('SIGTERM', () => {});
    conn.onend = () => {
      report({ event: 'ignoring-eof' });
      setTimeout(() => process.exit(3), 60000); // the parent must kill us first
      return new Promise(() => {}); // never finish our side
    };
    for await (const m of conn) void m;
  } else {
    throw new Error(`unknown behaviour ${behaviour}`);
  }
}

main(process.argv[2], process.argv[3]).catch((err) => {
  process.stderr.write(`node_worker: ${err.stack}\n`);
  process.exit(2);
});
