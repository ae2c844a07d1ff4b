'use strict';
// The work of one bench/node_pool.js job, the same for every pool: SHA-256 of the
// chunk's zlib deflate (level 6), 32 bytes.
const crypto = require('node:crypto');
const zlib = require('node:zlib');

function job(data) {
  return crypto.createHash('sha256').update(zlib.deflateSync(data)).digest();
}

module.exports = { job };
