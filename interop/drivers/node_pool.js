'use strict';
// A Node.js pool of workers that answer one-for-one with msgpack (raw replies), for the
// cross-language tests. Prints one JSON line with what it saw.
// Usage: node node_pool.js COUNT CRASH_FILE -- CMD [ARGS...]
//   COUNT requests {i, data, sleep, crash} go through pool.map() on 3 workers; request
//   COUNT/2 names CRASH_FILE, so the first worker that gets it dies and it is retried.
const crypto = require('node:crypto');
const { encode, decode } = require('@msgpack/msgpack');
const { createPool } = require('../node');

async function main() {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf('--');
  const [count, crashFile] = [Number(argv[0]), argv[1]];
  const command = argv.slice(sep + 1);
  const pool = await createPool(command[0], command.slice(1), {
    isCommand: true, raw: true, size: 3, handshakeTimeout: 30000,
  });
  const started = pool.pids;
  const expected = [];
  function* inputs() {
    for (let i = 0; i < count; i++) {
      const data = crypto.randomBytes(1 + ((i * 7919) % 4096));
      expected.push(crypto.createHash('sha256').update(data).digest('hex'));
      yield Buffer.from(encode({
        i,
        data,
        sleep: ((i * 31) % 7) / 1000,
        crash: i === Math.floor(count / 2) ? crashFile : null,
      }));
    }
  }
  const order = [];
  let hashesMatch = true;
  const workers = new Set();
  for await (const reply of pool.map(inputs())) {
    const { i, sha256, pid } = decode(reply);
    order.push(i);
    if (sha256 !== expected[i]) hashesMatch = false;
    workers.add(pid);
  }
  await pool.close();
  process.stdout.write(`${JSON.stringify({
    inOrder: order.every((i, k) => i === k) && order.length === count,
    hashesMatch,
    started,
    workersThatReplied: [...workers],
    pidsAfterClose: pool.pids,
  })}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
