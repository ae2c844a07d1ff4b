'use strict';
// A Node.js pool hashing 2,000 chunks of 64 KiB, in order, while one worker crashes mid-way:
// the pool replaces it and retries its chunk on another worker.
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { createPool } = require('../interop/node');

function* chunks(count) {
  for (let i = 0; i < count; i++) {
    const chunk = Buffer.alloc(64 * 1024, i % 251);
    chunk.writeUInt32BE(i, 0);
    yield chunk;
  }
}

async function main() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-pool-example-'));
  const crashed = path.join(dir, 'crashed');
  const pool = await createPool(path.join(__dirname, 'node_pool_worker.js'), [crashed], {
    size: 2,
    maxRetries: 1, // a request whose worker dies is tried once more on another worker
    timeout: 30000, // a request running longer kills its worker
  });
  const digests = [];
  for await (const digest of pool.map(chunks(2000))) digests.push(digest); // in input order
  await pool.close(); // every worker finishes and is reaped

  const expected = [...chunks(2000)].map((c) => crypto.createHash('sha256').update(c).digest());
  console.log(`hashed ${digests.length} chunks; in order and correct: ${digests.every((d, i) => d.equals(expected[i]))}`);
  console.log(`worker ${fs.readFileSync(crashed, 'utf8').trim()} crashed on chunk 1000, which was retried`);
  console.log(`workers running after close(): ${pool.pids.length}`);
  fs.rmSync(dir, { recursive: true });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
