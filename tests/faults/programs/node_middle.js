'use strict';
// A Node.js intermediate parent: starts one worker, reports both pids, waits to be killed.
// Usage: node node_middle.js WORKER_FILE [ARGS ...]

const path = require('node:path');
const { createWorker } = require(path.resolve(__dirname, '..', '..', '..', 'interop', 'node'));

createWorker(process.argv[2], process.argv.slice(3), { maxDuration: null }).then((worker) => {
  process.stdout.write(`${JSON.stringify({ event: 'middle', pid: process.pid, worker: worker.pid })}\n`);
  setTimeout(() => worker.close(), 60000); // safety net: the test kills us long before
});
