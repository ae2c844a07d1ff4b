'use strict';

// The parent side: createWorker() and Worker.

const { spawn } = require('node:child_process');

const { Channel, releaseChunk } = require('./channel');
const { Decoder, TruncatedStreamError, handshakeByte } = require('./codec');
const { defaults } = require('./defaults');
const { makeError, describeExit, WorkerExitError } = require('./errors');
const { beforeErrorDestroy, readLeftover } = require('./leftover');
const { planSpawn } = require('./spawn');
const { StderrTail } = require('./stderr-tail');
const { startTimer, stopTimer, limitOption } = require('./timer');

const INTERNAL = Symbol('worker-process.parent');

const noop = () => {};

// How long the parent waits for the end of the channel once the worker has
// exited (normally the end is already readable when the exit is reported).
const EOF_AFTER_EXIT_GRACE = 1000;
// How long the parent waits for the worker to exit after the channel ended
// before the handshake, before declaring the stream truncated.
const EXIT_AFTER_EOF_GRACE = 250;
// How long a receive, a failed send or close({ check: true }) waits for the
// worker's exit status (and the end of its stderr, with stderrTail) once the
// channel ended or broke, so that the error can say how the worker died.
const EXIT_STATUS_GRACE = 1000;

/** Whether `err` (null: a clean end) may be the trace of a worker that died. */
function mayBeDeath(err) {
  if (err === null || err instanceof TruncatedStreamError) return true;
  // A system error on the socket (EPIPE, ECONNRESET, ...), not one of ours.
  return typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code);
}

function stderrTailOption(value) {
  if (value === null || value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(`stderrTail must be a non-negative integer number of lines or null; got ${String(value)}`);
  }
  return value;
}

/**
 * Start a worker process and complete the handshake with it.
 */
function createWorker(file, args, options) {
  return new Promise((resolve, reject) => {
    if (args !== undefined && args !== null && !Array.isArray(args) && typeof args === 'object' && options === undefined) {
      options = args;
      args = [];
    }
    if (args === undefined || args === null) args = [];
    if (options === undefined || options === null) options = {};
    if (typeof file !== 'string' || file.length === 0) throw new TypeError('file must be a non-empty string');
    if (!Array.isArray(args)) throw new TypeError('args must be an array');
    const {
      isCommand = defaults.createWorker.isCommand,
      python = defaults.createWorker.python,
      handshakeTimeout = defaults.createWorker.handshakeTimeout,
      maxDuration = defaults.createWorker.maxDuration,
      maxMessageSize = defaults.createWorker.maxMessageSize,
      stdio = defaults.createWorker.stdio,
      stderrTail = defaults.createWorker.stderrTail,
      remote = defaults.createWorker.remote,
      ...spawnOptions
    } = options;
    const tailLines = stderrTailOption(stderrTail);
    const limits = {
      handshakeTimeout: limitOption('handshakeTimeout', handshakeTimeout),
      maxDuration: limitOption('maxDuration', maxDuration),
    };
    // Validated here so that a bad value is reported before anything is spawned.
    new Decoder({ role: 'parent', maxMessageSize });
    const plan = planSpawn(file, args.map(String), { isCommand, python, remote, stdio, stderrTail: tailLines, spawnOptions });
    let child;
    try {
      child = spawn(plan.command, plan.args, plan.options);
    } catch (err) {
      reject(err);
      return;
    }
    // eslint-disable-next-line no-new
    new Worker(INTERNAL, child, {
      ...limits,
      maxMessageSize,
      stderrTail: tailLines,
      forwardStderr: plan.forwardStderr,
      resolve,
      reject,
    });
  });
}

class Worker extends Channel {
  constructor(token, child, opts) {
    if (token !== INTERNAL) throw new TypeError('Worker instances are created by createWorker()');
    const socket = child.stdio[3];
    super(socket, 'parent', opts.maxMessageSize);
    this._child = child;
    this._ready = { resolve: opts.resolve, reject: opts.reject };
    this._failure = null;
    this._exit = null;
    this._settled = false;
    this._timers = { handshake: null, duration: null, close: null, eofGrace: null, exitGrace: null, tailGrace: null };
    // The end of the worker's stream, held back until its exit status is known.
    this._inputPending = null;
    this._goneWaiters = [];
    this._tail = null;
    this._tailGivenUp = false;
    this._closePromise = null;
    this._reapedCallbacks = [];
    this._takingBuffered = false;

    let lifetimeResolve;
    let lifetimeReject;
    this._lifetime = new Promise((res, rej) => {
      lifetimeResolve = res;
      lifetimeReject = rej;
    });
    // Users that never look at lifetime must not get unhandled rejections.
    this._lifetime.catch(noop);
    this._lifetimeResolve = lifetimeResolve;
    this._lifetimeReject = lifetimeReject;

    if (opts.stderrTail > 0 && child.stderr) {
      this._tail = new StderrTail(child.stderr, opts.stderrTail, opts.forwardStderr ? process.stderr : null);
      this._tail.ended().then(() => this._onGone());
    }
    child.on('error', (err) => this._onChildError(err));
    child.on('exit', (code, signal) => this._onExit(code, signal));

    if (child.pid === undefined) {
      // The spawn failed; 'error' follows on the next tick.
      this._spawnFailed = true;
      if (socket) socket.destroy();
      return;
    }

    socket.allowHalfOpen = true;
    // Node.js destroys a socket when a write fails (EPIPE once the worker is
    // gone), which would drop what the worker wrote and we have not read yet:
    // read it before the descriptor is closed (see ./leftover).
    beforeErrorDestroy(socket, () => this._readRest());
    socket.on('data', (chunk) => {
      if (this._takingBuffered) return;
      this._onData(chunk);
      releaseChunk(socket, chunk);
    });
    socket.on('end', () => this._onEof());
    socket.on('error', (err) => {
      this._state.send('fail', err);
      this._onSocketError(err);
    });
    socket.on('close', () => {
      this._state.send('close');
      this._onSocketClose();
    });
    socket.write(Buffer.from([handshakeByte('parent')]));

    if (opts.handshakeTimeout !== null) {
      this._timers.handshake = startTimer(opts.handshakeTimeout, () => {
        this._timers.handshake = null;
        this._fail(
          makeError(`worker did not complete the handshake within ${opts.handshakeTimeout} ms`, 'ERR_HANDSHAKE_TIMEOUT'),
          true,
        );
      });
    }
    if (opts.maxDuration !== null) {
      this._timers.duration = startTimer(
        opts.maxDuration,
        () => {
          this._timers.duration = null;
          this._fail(makeError(`worker exceeded its maximum duration of ${opts.maxDuration} ms`, 'ERR_MAX_DURATION'), false);
        },
        { unref: true },
      );
    }
  }

  /**
   * Resolves when the worker exited with code 0 and everything it sent has
   * been read and delivered; rejects otherwise.
   */
  get lifetime() {
    return this._lifetime;
  }

  get pid() {
    return this._child.pid;
  }

  get process() {
    return this._child;
  }

  kill(signal = 'SIGTERM') {
    try {
      return this._child.kill(signal);
    } catch (err) {
      if (err && err.code === 'ERR_UNKNOWN_SIGNAL') throw err;
      return false;
    }
  }

  /**
   * Flush pending sends, end our write side and wait for the worker to exit,
   * escalating to SIGTERM and then SIGKILL after `timeout` ms each.
   */
  close({ timeout = defaults.close.timeout, check = defaults.close.check } = {}) {
    const closing = this._closeOnce(timeout);
    if (!check) return closing;
    return closing.then((status) => {
      if (!this._died()) return status;
      return this._whenGone(EXIT_STATUS_GRACE).then(() => {
        throw this._exitError(null);
      });
    });
  }

  _closeOnce(timeout) {
    if (this._closePromise) return this._closePromise;
    if (timeout !== null && timeout !== Infinity && (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0)) {
      return Promise.reject(new RangeError(`timeout must be a non-negative number, Infinity or null; got ${String(timeout)}`));
    }
    this._closePromise = new Promise((resolve) => {
      const result = () => ({ exitCode: this._exit.code, signal: this._exit.signal });
      if (this._exit) {
        resolve(result());
        return;
      }
      this._reapedCallbacks.push(() => resolve(result()));
      if (!this._socket.destroyed) this._finishWriting();
      else this._state.send('close');
      if (timeout !== null && timeout !== Infinity) {
        this._timers.close = startTimer(timeout, () => {
          this._killWorker('SIGTERM');
          this._timers.close = startTimer(timeout, () => {
            this._timers.close = null;
            this._killWorker('SIGKILL');
          });
        });
      }
    });
    return this._closePromise;
  }

  // -- internals ------------------------------------------------------------

  /** The worker's stream is over: ended, broken or cut by us. */
  get _inputDone() {
    return this._inputPending !== null || this._state.receiveDone;
  }

  /** The worker exited unsuccessfully (non-zero code or a signal). */
  _died() {
    return this._exit !== null && (this._exit.code !== 0 || this._exit.signal !== null);
  }

  /** Whatever the worker's stderr will add to the tail is in. */
  _tailDone() {
    return this._tail === null || this._tail.done || this._tailGivenUp;
  }

  /** Resolves once the exit status (and the stderr tail) is known, or after `ms`. */
  _whenGone(ms) {
    if (this._exit && this._tailDone()) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const waiters = this._goneWaiters;
      function done() {
        clearTimeout(timer);
        const index = waiters.indexOf(done);
        if (index >= 0) waiters.splice(index, 1);
        resolve();
      }
      waiters.push(done);
    });
  }

  _onGone() {
    if (!this._exit || !this._tailDone()) return;
    for (const done of this._goneWaiters.slice()) done();
    this._update();
  }

  _stderrNote() {
    const text = this._tail ? this._tail.text() : '';
    return text ? `; the last lines of its stderr:\n${text}` : '';
  }

  /** The error for a worker that died; `cause` is what the channel saw. */
  _exitError(cause) {
    const failure = this._failure && this._failure !== cause ? this._failure : null;
    return new WorkerExitError({
      exitCode: this._exit.code,
      signal: this._exit.signal,
      stderr: this._tail ? this._tail.text() : '',
      reason: failure ? failure.message : null,
      cause: cause || failure || undefined,
    });
  }

  /** What a failed or refused send reports: the worker's death, once known. */
  _explain(err) {
    if (err instanceof WorkerExitError || !this._state.handshaken) return Promise.resolve(err);
    if (err.cause instanceof WorkerExitError) return Promise.resolve(err.cause);
    // A send after our own close() is refused because of the close.
    if (err.code === 'ERR_CHANNEL_CLOSED' && this._closePromise) return Promise.resolve(err);
    return this._whenGone(EXIT_STATUS_GRACE).then(() => (this._died() ? this._exitError(err) : err));
  }

  _killWorker(signal) {
    if (this._exit) return;
    try {
      this._child.kill(signal);
    } catch {
      // already gone
    }
  }

  /** Record a failure (first one wins), kill the worker and maybe cut the channel. */
  _fail(err, destroySocket) {
    if (!this._failure) this._failure = err;
    if (destroySocket) {
      this._markInputDone(err);
      if (!this._socket.destroyed) this._socket.destroy();
    }
    this._killWorker('SIGKILL');
    this._update();
  }

  _markInputDone(err) {
    if (this._inputDone) return;
    this._timers.eofGrace = stopTimer(this._timers.eofGrace);
    if (this._state.handshaken && mayBeDeath(err) && !(this._exit && this._tailDone())) {
      // Hold the end back until the exit status says whether the worker
      // finished or died (bounded: a worker may end its stream and live on).
      this._inputPending = { err };
      this._whenGone(EXIT_STATUS_GRACE).then(() => this._settleInput());
      return;
    }
    this._endInput(err);
  }

  _settleInput() {
    const pending = this._inputPending;
    if (!pending) return;
    this._inputPending = null;
    this._endInput(pending.err);
    this._update();
  }

  _endInput(err) {
    if (this._state.handshaken && this._died() && mayBeDeath(err)) {
      if (err instanceof TruncatedStreamError) {
        // The stream's own evidence stays the error; the death is attached.
        const death = this._exitError(null);
        if (err.cause === undefined) err.cause = death;
        Object.assign(err, { exitCode: death.exitCode, signal: death.signal });
        err.message += `; the worker ${describeExit(this._exit)}${this._stderrNote()}`;
      } else {
        err = this._exitError(err);
      }
    }
    if (err) this._inputFailed(err);
    else this._inputEnded();
  }

  _onData(chunk) {
    if (this._inputDone) return;
    // What preceded a protocol error in the same chunk is delivered first.
    const error = this._feed(chunk);
    if (error) this._fail(error, true);
  }

  _onHandshake() {
    this._timers.handshake = stopTimer(this._timers.handshake);
    this._ready.resolve(this);
  }

  _onEof() {
    if (this._inputDone) return;
    try {
      this._decoder.end();
    } catch (err) {
      if (!this._state.handshaken) {
        // The worker closed the channel before answering. Give it a moment
        // to exit so the rejection can report its exit status instead.
        this._state.receive('end', err);
        if (!this._exit) {
          this._timers.exitGrace = startTimer(EXIT_AFTER_EOF_GRACE, () => {
            this._timers.exitGrace = null;
            this._fail(err, false);
          });
        }
        this._update();
        return;
      }
      this._fail(err, true);
      return;
    }
    this._markInputDone(null);
    this._update();
  }

  _onSocketError(err) {
    // A failed write has already failed its send() promises; it does not
    // decide the lifetime. Whatever the worker wrote was read by _readRest().
    if (this._inputDone) return;
    if (err && err.code === 'ECONNRESET' && err.syscall === 'read') {
      // AF_UNIX reports ECONNRESET instead of EOF when the worker closed its
      // end with unread data; everything it sent has been read by now.
      this._onEof();
      return;
    }
    if (!this._state.handshaken) {
      this._onEof();
      return;
    }
    // The socket failed while the worker's side was still open (it stopped
    // reading with shutdown(SHUT_RD) but may still write): what it writes
    // from now on cannot be read, so the lifetime cannot succeed.
    if (!this._failure) this._failure = err;
    this._markInputDone(err);
    this._update();
  }

  /**
   * Called when the socket is about to be destroyed because of an error:
   * read what is left in the receive buffer synchronously, up to the
   * worker's end of stream. A write fails with EPIPE only once the worker's
   * socket is released, so everything it ever wrote is already there.
   */
  _readRest() {
    if (this._inputDone) return;
    // First what the stream itself read ahead but did not emit (reading was
    // paused); read() emits it as 'data' too, which the listener ignores.
    while (this._socket.readableLength > 0) {
      this._takingBuffered = true;
      let buffered;
      try {
        buffered = this._socket.read();
      } finally {
        this._takingBuffered = false;
      }
      if (!buffered) break;
      this._onData(buffered);
      if (this._inputDone) return;
    }
    readLeftover(this._socket, {
      done: () => this._inputDone,
      data: (chunk) => this._onData(chunk),
      end: () => this._onEof(),
    });
  }

  _onSocketClose() {
    if (!this._inputDone) this._onEof();
  }

  _onChildError(err) {
    if (this._spawnFailed && !this._settled) {
      this._settled = true;
      this._clearTimers();
      this._ready.reject(err);
      this._lifetimeReject(err);
    }
    // Other errors (a failed kill) are reported through lifetime/exit.
  }

  _onExit(code, signal) {
    if (this._exit) return;
    this._exit = { code, signal };
    this._timers.handshake = stopTimer(this._timers.handshake);
    this._timers.duration = stopTimer(this._timers.duration);
    this._timers.close = stopTimer(this._timers.close);
    this._timers.exitGrace = stopTimer(this._timers.exitGrace);
    // The worker can write nothing more: what it wrote is in the socket's
    // receive buffer, bounded by the kernel. Read it to the end of stream
    // without back-pressure, so that lifetime does not depend on the
    // application consuming (queued messages stay queued for it).
    this._resumeReading();
    if (!this._inputDone) {
      // The end of the channel is normally already readable; if a leaked copy
      // of the worker's end keeps it open, stop waiting after a grace period.
      this._timers.eofGrace = startTimer(EOF_AFTER_EXIT_GRACE, () => {
        this._timers.eofGrace = null;
        setImmediate(() => {
          if (this._inputDone) return;
          if (!this._socket.destroyed) this._socket.destroy();
          this._onEof();
        });
      });
    }
    if (this._died()) {
      // Sends from now on report the death (see _explain).
      this._state.send('fail', makeError('the worker is gone', 'ERR_CHANNEL_CLOSED'));
      if (!this._tailDone()) {
        // A grandchild may hold the worker's stderr open.
        this._timers.tailGrace = startTimer(EXIT_STATUS_GRACE, () => {
          this._timers.tailGrace = null;
          this._tailGivenUp = true;
          this._onGone();
        });
      }
    }
    const callbacks = this._reapedCallbacks;
    this._reapedCallbacks = [];
    for (const cb of callbacks) cb();
    this._onGone();
    this._update();
  }

  _clearTimers() {
    for (const key of Object.keys(this._timers)) this._timers[key] = stopTimer(this._timers[key]);
  }

  _mayPauseReading() {
    return this._exit === null;
  }

  _consumersChanged() {
    this._update();
  }

  _onInboxEmptyAfterEnd() {
    this._update();
  }

  _update() {
    if (this._settled || !this._exit || !this._inputDone || this._inputPending) return;
    if (this._died() && !this._tailDone()) return;
    const exitInfo = { exitCode: this._exit.code, signal: this._exit.signal };
    if (!this._state.handshaken) {
      this._settled = true;
      this._clearTimers();
      let err = this._failure;
      if (err) {
        if (err.exitCode === undefined) Object.assign(err, exitInfo);
      } else {
        err = makeError(
          `worker exited before completing the handshake (${describeExit(this._exit)})${this._stderrNote()}`,
          'ERR_WORKER_EXITED',
          { ...exitInfo, stderr: this._tail ? this._tail.text() : '' },
        );
      }
      if (!this._socket.destroyed) this._socket.destroy();
      this._ready.reject(err);
      this._lifetimeReject(err);
      return;
    }
    if (this._inbox.length > 0 && this._hasConsumer()) return;
    this._settled = true;
    this._clearTimers();
    // The worker is gone and its stream fully read: release the descriptor.
    if (!this._socket.destroyed) this._socket.destroy();
    if (this._failure) {
      const err = this._failure;
      if (err.exitCode === undefined) Object.assign(err, exitInfo);
      this._lifetimeReject(err);
    } else if (this._exit.code === 0) {
      this._lifetimeResolve(undefined);
    } else {
      this._lifetimeReject(
        makeError(`worker ${describeExit(this._exit)}${this._stderrNote()}`, undefined, {
          code: this._exit.code,
          exitCode: this._exit.code,
          signal: this._exit.signal,
          stderr: this._tail ? this._tail.text() : '',
        }),
      );
    }
  }
}

module.exports = { createWorker, Worker };
