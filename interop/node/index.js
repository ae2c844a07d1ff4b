'use strict';

// worker-process-node: the public API, re-exported from ./lib (one concern
// per module: codec, state, channel, spawn, parent, worker, errors).
//
// Environment: WORKER_PROCESS_PYTHON, the Python that runs .py workers and
// the relay of remote workers when createWorker gets no `python` option
// (default: python3 on PATH).

const { createWorker, Worker } = require('./lib/parent');
const { connect, Connection } = require('./lib/worker');
const { defaults } = require('./lib/defaults');
const {
  PROTOCOL,
  Decoder,
  encodeHeader,
  handshakeByte,
} = require('./lib/codec');
const {
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  WorkerExitError,
} = require('./lib/errors');

require('./lib/request').installRequest(Worker);

module.exports = {
  createWorker,
  connect,
  Worker,
  Connection,
  defaults,
  PROTOCOL,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  WorkerExitError,
  Decoder,
  encodeHeader,
  handshakeByte,
  ...require('./lib/request').api,
  ...require('./lib/serve').api,
  ...require('./lib/pool').api,
};
