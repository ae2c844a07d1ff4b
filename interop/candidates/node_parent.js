'use strict';
// Conformance candidate: the parent contract (spec/conformance.md) on the Node.js peer.
//
//   python -m worker_process conformance parent -- node interop/candidates/node_parent.js

const { constants } = require('node:os');
const { createWorker, ProtocolError } = require('../node/index.js');

const CONTROL = Buffer.from('\xffconformance:', 'latin1');
const CLOSE = Buffer.concat([CONTROL, Buffer.from('close')]);
const QUIET = Buffer.concat([CONTROL, Buffer.from('quiet')]);

function report(outcome, fields) {
  process.stdout.write(`${JSON.stringify({ outcome, ...fields })}\n`);
}

async function main() {
  const [file, ...args] = JSON.parse(process.env.WORKER_PROCESS_PROBE);
  const limit = process.env.WORKER_PROCESS_MAX_MESSAGE_SIZE;
  const closeTimeout = Number(process.env.WORKER_PROCESS_CLOSE_TIMEOUT || '5') * 1000;
  const options = { isCommand: true, maxDuration: null, stdio: 'inherit' };
  if (limit) options.maxMessageSize = Number(limit);
  let worker;
  try {
    worker = await createWorker(file, args, options);
  } catch (err) {
    report('start_failed', { error: `${err.name}: ${err.message}` });
    return;
  }
  let messages = 0;
  let bytes = 0;
  let echo = true;
  let closing = null;
  worker.send(Buffer.from('hello')).catch(() => {});
  try {
    for await (const message of worker) {
      if (message.equals(CLOSE)) {
        echo = false;
        closing = worker.close({ timeout: closeTimeout });
      } else if (message.equals(QUIET)) {
        echo = false;
      } else {
        messages += 1;
        bytes += message.length;
        if (echo) worker.send(message).catch(() => {});
      }
    }
  } catch {
    // the lifetime says what went wrong
  }
  const counts = { messages, bytes };
  try {
    await worker.lifetime;
    report('ok', { returncode: 0, ...counts });
  } catch (err) {
    if (err instanceof ProtocolError) {
      report('protocol_error', { error: err.message, ...counts });
    } else if (err.signal) {
      report('killed', { signal: constants.signals[err.signal], returncode: -constants.signals[err.signal], ...counts });
    } else if (typeof err.exitCode === 'number' && err.exitCode !== 0) {
      report('exited', { returncode: err.exitCode, ...counts });
    } else {
      report('error', { error: `${err.code || err.name}: ${err.message}`, ...counts });
    }
  } finally {
    if (closing) await closing;
    await worker.close();
  }
}

main();
