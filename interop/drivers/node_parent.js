'use strict';
// A Node.js parent for the cross-language tests: runs a scenario against a worker command and
// prints one JSON line with what it saw. Usage: node node_parent.js SCENARIO -- CMD [ARGS...]
//   echo-sizes   echo of 0 B, 1 B, 64 KiB, 16 MiB, 64 MiB random payloads, then close()
//   stream N     N messages sent without waiting while the echoes are read back, in order
//   msgpack      msgpack values round-trip through a worker that wraps them as {lang, echo}
//   burst N      read every message until the worker's end of stream, then its lifetime
//   lifetime     read one message, then report how lifetime settled (code, signal)
//   handshake    report how createWorker settled and how long it took
//   middle       print the worker's pid, then read messages until killed
const crypto = require('node:crypto');
const { createWorker } = require('../node');

function parseArgs() {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf('--');
  if (sep < 1) throw new Error('usage: node_parent.js SCENARIO [N] -- CMD [ARGS...]');
  return { scenario: argv[0], params: argv.slice(1, sep), command: argv.slice(sep + 1) };
}

function report(result) {
  process.stdout.write(JSON.stringify(result) + '\n');
}

async function start(command, options = {}) {
  return createWorker(command[0], command.slice(1), {
    isCommand: true, maxDuration: null, handshakeTimeout: 30000, ...options,
  });
}

async function settle(promise) {
  try {
    await promise;
    return { ok: true };
  } catch (err) {
    return { ok: false, code: err.code ?? null, exitCode: err.exitCode ?? null,
             signal: err.signal ?? null, name: err.name, message: err.message };
  }
}

async function main() {
  const { scenario, params, command } = parseArgs();
  switch (scenario) {
    case 'echo-sizes': {
      const worker = await start(command);
      const iterator = worker[Symbol.asyncIterator]();
      const sizes = [0, 1, 64 * 1024, 16 * 1024 * 1024, 64 * 1024 * 1024];
      const results = [];
      for (const size of sizes) {
        const payload = crypto.randomBytes(size);
        await worker.send(payload);
        const { value } = await iterator.next();
        results.push({ size, equal: Buffer.isBuffer(value) && value.equals(payload) });
      }
      const status = await worker.close();
      report({ results, status, lifetime: await settle(worker.lifetime) });
      return;
    }
    case 'stream': {
      const count = Number(params[0]);
      const worker = await start(command);
      const sending = (async () => {
        for (let i = 0; i < count; i++) {
          const payload = Buffer.alloc(4 * (i % 7));
          for (let j = 0; j < payload.length; j += 4) payload.writeUInt32BE(i, j);
          await worker.send(payload);
        }
      })();
      let inOrder = 0;
      let i = 0;
      for await (const message of worker) {
        const expected = Buffer.alloc(4 * (i % 7));
        for (let j = 0; j < expected.length; j += 4) expected.writeUInt32BE(i, j);
        if (message.equals(expected)) inOrder++;
        if (++i === count) break;
      }
      await sending;
      const status = await worker.close();
      report({ received: i, inOrder, status, lifetime: await settle(worker.lifetime) });
      return;
    }
    case 'msgpack': {
      const { encode, decode } = require('@msgpack/msgpack');
      const values = [
        { name: 'world', n: 42, list: [1, 2.5, 'three', null, true] },
        { nested: { bin: new Uint8Array([0, 1, 255]), big: 2 ** 40 } },
        'a string', -7, [],
      ];
      const worker = await start(command);
      const iterator = worker[Symbol.asyncIterator]();
      const answers = [];
      for (const value of values) {
        await worker.send(Buffer.from(encode(value)));
        const { value: message } = await iterator.next();
        answers.push(decode(message));
      }
      await worker.close();
      report({ answers: answers.map((answer, i) => ({
        lang: answer.lang,
        same: Buffer.from(encode(answer.echo)).equals(Buffer.from(encode(values[i]))),
      })) });
      return;
    }
    case 'burst': {
      const worker = await start(command);
      let count = 0;
      let inOrder = 0;
      for await (const message of worker) {
        if (message.length === 256 && message.readUInt32BE(0) === count) inOrder++;
        count++;
      }
      report({ count, inOrder, lifetime: await settle(worker.lifetime) });
      return;
    }
    case 'lifetime': {
      const worker = await start(command);
      const iterator = worker[Symbol.asyncIterator]();
      const { value } = await iterator.next();
      report({ first: value ? value.toString() : null, lifetime: await settle(worker.lifetime) });
      return;
    }
    case 'handshake': {
      const started = process.hrtime.bigint();
      const outcome = await settle(start(command));
      report({ ...outcome, seconds: Number(process.hrtime.bigint() - started) / 1e9 });
      return;
    }
    case 'middle': {
      const worker = await start(command);
      process.stdout.write(`${worker.pid}\n`);
      for await (const message of worker) process.stdout.write(`${message}\n`);
      return;
    }
    default:
      throw new Error(`unknown scenario ${scenario}`);
  }
}

main().then(() => process.exitCode = process.exitCode ?? 0, (err) => {
  process.stderr.write(`node_parent: ${err.stack || err}\n`);
  process.exit(2);
});
