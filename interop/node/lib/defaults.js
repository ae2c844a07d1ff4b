'use strict';

// The default of every option, in one place. Durations are in milliseconds;
// null means "no limit" (or "not set"). The Python API has the same defaults,
// in seconds (tests/interop/test_defaults_match.py compares them).

const { PROTOCOL } = require('./codec');

const defaults = Object.freeze({
  /** createWorker(file, args, options) */
  createWorker: Object.freeze({
    /** Spawn `file` as the program instead of choosing an interpreter by extension. */
    isCommand: false,
    /** Interpreter for .py files; null: $WORKER_PROCESS_PYTHON, else 'python3'. */
    python: null,
    /** Milliseconds to wait for the worker's handshake byte. */
    handshakeTimeout: 60000,
    /** Milliseconds the worker may run before it is killed; null: no limit. */
    maxDuration: null,
    /** Largest message accepted from the worker (capped at buffer.constants.MAX_LENGTH). */
    maxMessageSize: PROTOCOL.MAX_MESSAGE_SIZE,
    /** fds 0-2 of the worker. */
    stdio: 'inherit',
    /** Where the worker runs: null (here), 'ssh://[user@]host[:port]' or an argv prefix array. */
    remote: null,
    /** Lines of the worker's stderr kept for the error that reports its death; 0: none. */
    stderrTail: 0,
  }),
  /** worker.close(options) */
  close: Object.freeze({
    /** Milliseconds before SIGTERM, and again before SIGKILL; null: never. */
    timeout: 5000,
    /** Reject with a WorkerExitError when the worker exited unsuccessfully. */
    check: false,
  }),
  /** connect(options) */
  connect: Object.freeze({
    /** Milliseconds to wait for the parent's handshake byte. */
    handshakeTimeout: 60000,
    /** Largest message accepted from the parent (capped at buffer.constants.MAX_LENGTH). */
    maxMessageSize: PROTOCOL.MAX_MESSAGE_SIZE,
  }),
});

module.exports = { defaults };
