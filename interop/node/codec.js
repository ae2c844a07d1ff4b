'use strict';

// The sans-I/O codec, importable on its own as `worker-process-node/codec`.
module.exports = require('./lib/codec');
