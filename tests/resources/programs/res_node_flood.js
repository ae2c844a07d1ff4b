'use strict';
// Node.js worker: sends TOTAL bytes in SIZE-byte messages as fast as send() allows, then
// finishes. Usage: node res_node_flood.js TOTAL SIZE
const path = require('node:path');
const { connect } = require(path.resolve(__dirname, '..', '..', '..', 'interop', 'node'));

(async () => {
  const [total, size] = process.argv.slice(2).map(Number);
  const conn = await connect();
  const payload = Buffer.alloc(size, 0xa5);
  for (let sent = 0; sent < total; sent += size) await conn.send(payload);
  await conn.finish();
})().catch((err) => {
  process.stderr.write(`${err.stack}\n`);
  process.exit(2);
});
