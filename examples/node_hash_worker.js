'use strict';
// A Node.js worker for examples/python_pool_of_node.py: answers each message with the
// SHA-256 digest of it, one reply per message, in order (so a Python pool with raw=True
// can use it as it is).
const crypto = require('node:crypto');
const { connect } = require('../interop/node');

connect().then((conn) => {
  conn.onmessage = (chunk) => conn.send(crypto.createHash('sha256').update(chunk).digest());
});
