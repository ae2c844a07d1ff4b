'use strict';

// Errors raised above the codec. Protocol errors (the peer broke the wire
// format) are the codec's: ProtocolError and its subclasses, re-exported here.
//
// Every error carries a string `code`:
//   ERR_CHANNEL_CLOSED     send() after our side was finished or released
//   ERR_HANDSHAKE_TIMEOUT  no handshake within handshakeTimeout
//   ERR_MAX_DURATION       the worker ran longer than maxDuration
//   ERR_NO_CHANNEL         connect() in a process without a channel on fd 3
//   ERR_WORKER_EXITED      the worker exited (before the handshake, or while
//                          the channel was in use): WorkerExitError

const {
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
} = require('./codec');

function makeError(message, code, extra) {
  const err = new Error(message);
  err.code = code;
  if (extra) Object.assign(err, extra);
  return err;
}

function channelClosedError() {
  return makeError('the channel is closed for sending', 'ERR_CHANNEL_CLOSED');
}

/** "exited with code N" or "was killed by SIGNAL". */
function describeExit({ code, signal }) {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

/**
 * The worker died (exited with a non-zero code or was killed): what send(),
 * a receive or close({ check: true }) report then. `cause` is what the
 * channel itself saw (EPIPE, a stream cut inside a frame, ...), if anything;
 * `stderr` the last lines of the worker's stderr when `stderrTail` was set.
 */
class WorkerExitError extends Error {
  constructor({ exitCode, signal, stderr = '', reason = null, cause } = {}) {
    let message = `worker ${describeExit({ code: exitCode, signal })}`;
    if (reason) message += ` (${reason})`;
    if (stderr) message += `; the last lines of its stderr:\n${stderr}`;
    super(message, cause === undefined || cause === null ? undefined : { cause });
    this.name = 'WorkerExitError';
    this.code = 'ERR_WORKER_EXITED';
    this.exitCode = exitCode;
    this.signal = signal;
    this.stderr = stderr;
  }
}

module.exports = {
  makeError,
  channelClosedError,
  describeExit,
  WorkerExitError,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
};
