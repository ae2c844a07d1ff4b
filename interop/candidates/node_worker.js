'use strict';
// Conformance candidate: the worker contract (spec/conformance.md) on the Node.js peer.
//
//   python -m worker_process conformance worker -- node interop/candidates/node_worker.js

const { connect } = require('../node/index.js');

const BURST = Buffer.from('\xffconformance:burst ', 'latin1');

async function main() {
  const limit = process.env.WORKER_PROCESS_MAX_MESSAGE_SIZE;
  const conn = await connect(limit ? { maxMessageSize: Number(limit) } : {});
  for await (const message of conn) {
    if (message.length >= BURST.length && message.subarray(0, BURST.length).equals(BURST)) {
      const [count, size] = message.subarray(BURST.length).toString('latin1').split(' ').map(Number);
      for (let i = 0; i < count; i++) conn.send(Buffer.alloc(size, i % 256));
      await conn.finish();
      process.exit(0); // at once: finish() must have handed everything to the kernel
    }
    conn.send(message);
  }
  // The parent ended its stream cleanly; the connection finishes by itself.
}

main();
