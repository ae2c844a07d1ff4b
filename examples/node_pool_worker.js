'use strict';
// A pool worker for examples/node_pool.js: answers each chunk with its SHA-256.
// The first worker to get chunk 1000 dies mid-request (as a crash in native code would),
// leaving the file named by argv[2] behind so that the retry succeeds.
const crypto = require('node:crypto');
const fs = require('node:fs');
const { serve } = require('../interop/node');

const marker = process.argv[2];

serve((chunk) => {
  if (chunk.readUInt32BE(0) === 1000 && marker && !fs.existsSync(marker)) {
    fs.writeFileSync(marker, `${process.pid}\n`);
    process.kill(process.pid, 'SIGKILL');
  }
  return crypto.createHash('sha256').update(chunk).digest();
});
