'use strict';
// Node.js parent reading slowly from a flooding Python worker.
// Usage: node res_node_slow_parent.js WORKER_FILE TOTAL SIZE EVERY DELAY_MS
// Prints its pid first (a JSON line), then the byte count it received.
const path = require('node:path');
const { createWorker } = require(path.resolve(__dirname, '..', '..', '..', 'interop', 'node'));

(async () => {
  const [file, total, size, every, delay] = process.argv.slice(2);
  process.stdout.write(`${JSON.stringify({ event: 'started', pid: process.pid })}\n`);
  const worker = await createWorker(file, ['send', total, size], { maxDuration: null });
  let received = 0;
  let count = 0;
  for await (const m of worker) {
    received += m.length;
    count += 1;
    if (count % Number(every) === 0) await new Promise((r) => setTimeout(r, Number(delay)));
  }
  await worker.close();
  process.stdout.write(`${JSON.stringify({ event: 'done', received })}\n`);
})().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(2);
});
