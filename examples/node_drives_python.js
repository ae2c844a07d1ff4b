'use strict';
// A Node.js parent driving the Python worker in json_worker.py.
// Run it with a Python that has worker_process installed: WORKER_PROCESS_PYTHON=.venv/bin/python
const path = require('node:path');
const { createWorker } = require('../interop/node');

async function main() {
  // A .py file runs under $WORKER_PROCESS_PYTHON (or python3); isCommand works too:
  // createWorker('python3', ['json_worker.py'], { isCommand: true }).
  const worker = await createWorker(path.join(__dirname, 'json_worker.py'), [], { maxDuration: null });
  const replies = worker[Symbol.asyncIterator]();
  for (const name of ['world', 'node']) {
    await worker.send(Buffer.from(JSON.stringify({ name })));
    const { value } = await replies.next();
    console.log(JSON.parse(value.toString()));
  }
  const status = await worker.close(); // ends our stream: the worker's loop ends, it exits 0
  console.log('python worker exited with', status.exitCode);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
