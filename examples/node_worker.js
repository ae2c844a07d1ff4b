'use strict';
// A Node.js worker, driven by examples/python_drives_node.py. JSON in, JSON out.
const { connect } = require('../interop/node');

connect().then((conn) => {
  conn.onmessage = (message) => {
    const request = JSON.parse(message.toString());
    return conn.send(Buffer.from(JSON.stringify({ hello: request.name, from: `node ${process.version}` })));
  };
  // When the parent ends its stream, the connection finishes by itself and the process exits 0.
});
