'use strict';

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { fileURLToPath } = require('node:url');

const {
  PROTOCOL,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  Decoder,
  encodeHeader,
  handshakeByte,
} = require('./codec');

const INTERNAL = Symbol('worker-process.internal');

// Payloads up to this size are copied behind their header so that a frame is
// a single chunk for the socket; larger payloads are written as they are.
const COALESCE_LIMIT = 16 * 1024;

// How long the parent waits for the end of the channel once the worker has
// exited (normally the end is already readable when the exit is reported).
const EOF_AFTER_EXIT_GRACE = 1000;
// How long the parent waits for the worker to exit after the channel ended
// before the handshake, before declaring the stream truncated.
const EXIT_AFTER_EOF_GRACE = 250;

const MAX_TIMER = 0x7fffffff;

// Read-side back-pressure: reading stops while more than READ_HIGH_WATER bytes
// of received messages wait for the application, and starts again once they
// are down to READ_LOW_WATER. A single larger message is still delivered: the
// marks bound the queue, not a message. Each queued message also counts
// MESSAGE_CHARGE bytes for its object, so that a flood of empty messages is
// bounded too.
const READ_HIGH_WATER = 4 * 1024 * 1024;
const READ_LOW_WATER = 1024 * 1024;
const MESSAGE_CHARGE = 64;

const EMPTY = Buffer.alloc(0);

// The worker reads its channel into one reused buffer of this size.
const READ_BUFFER_SIZE = 64 * 1024;

const noop = () => {};

// ---------------------------------------------------------------------------
// small helpers

class Fifo {
  constructor() {
    this._items = [];
    this._head = 0;
  }

  get length() {
    return this._items.length - this._head;
  }

  push(item) {
    this._items.push(item);
  }

  shift() {
    if (this._head >= this._items.length) return undefined;
    const item = this._items[this._head];
    this._items[this._head++] = undefined;
    if (this._head === this._items.length) {
      this._items = [];
      this._head = 0;
    } else if (this._head >= 1024 && this._head * 2 >= this._items.length) {
      this._items = this._items.slice(this._head);
      this._head = 0;
    }
    return item;
  }
}

function makeError(message, code, extra) {
  const err = new Error(message);
  err.code = code;
  if (extra) Object.assign(err, extra);
  return err;
}

function channelClosedError() {
  return makeError('the channel is closed for sending', 'ERR_CHANNEL_CLOSED');
}

/** Timer that accepts any duration, including ones longer than setTimeout allows. */
function startTimer(ms, fn, { unref = false } = {}) {
  const timer = { handle: null };
  const arm = (remaining) => {
    const step = Math.min(remaining, MAX_TIMER);
    timer.handle = setTimeout(() => {
      if (remaining > step) arm(remaining - step);
      else {
        timer.handle = null;
        fn();
      }
    }, step);
    if (unref) timer.handle.unref();
  };
  arm(ms);
  return timer;
}

function stopTimer(timer) {
  if (timer && timer.handle) {
    clearTimeout(timer.handle);
    timer.handle = null;
  }
  return null;
}

/** Duration option where 0, Infinity and null all mean "no limit". */
function limitOption(name, value) {
  if (value === null || value === 0 || value === Infinity) return null;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number of milliseconds, 0, Infinity or null; got ${String(value)}`);
  }
  return value;
}

// A chunk read from the socket is garbage once decoded: the decoder copies
// payloads out. Detaching its ArrayBuffer frees the memory at once, instead of
// when the garbage collector next looks at external memory (V8 lets that grow
// by 64 MiB or more first), which would add as much again to the bounded
// queue. Only a chunk that owns its whole ArrayBuffer and that no other 'data'
// listener sees is released. Needs ArrayBuffer.prototype.transfer (Node.js 21).
const CAN_DETACH = typeof ArrayBuffer.prototype.transfer === 'function';

function releaseChunk(socket, chunk) {
  if (!CAN_DETACH || chunk.byteOffset !== 0 || chunk.buffer.byteLength !== chunk.length) return;
  if (socket.listenerCount('data') !== 1) return;
  try {
    chunk.buffer.transfer(0);
  } catch {
    // not detachable: the collector frees it
  }
}

function toPromiseWithNoopCatch(promise) {
  promise.catch(noop);
  return promise;
}

// ---------------------------------------------------------------------------
// Channel: what the parent's Worker and the worker's Connection share

class Channel {
  constructor(socket, role, maxMessageSize) {
    this._socket = socket;
    this._decoder = new Decoder({ role, maxMessageSize });
    this._inbox = new Fifo();
    this._handler = null;
    this._waiters = new Fifo();
    this._iterators = 0;
    this._busyIterators = 0;
    // An onmessage handler returned a promise that has not settled: the next
    // message waits for it.
    this._handlerBusy = false;
    this._handlerSettled = () => {
      this._handlerBusy = false;
      this._pump();
    };
    // The derived promise re-rejects, so a failing async handler still
    // surfaces as an unhandled rejection, exactly as without this library.
    this._handlerFailed = (err) => {
      this._handlerSettled();
      throw err;
    };
    this._queuedBytes = 0; // what the inbox holds, charged as above
    this._readPaused = false;
    this._pumping = false;
    this._pumpScheduled = false;
    // 'open' | 'ended' | 'failed'
    this._input = 'open';
    this._inputError = null;
    this._writeClosed = false;
    this._corked = false;
    this._finishPromise = null;
  }

  get onmessage() {
    return this._handler;
  }

  set onmessage(fn) {
    if (fn !== null && fn !== undefined && typeof fn !== 'function') {
      throw new TypeError('onmessage must be a function or null');
    }
    this._handler = fn || null;
    if (this._handler && this._inbox.length > 0) this._schedulePump();
    this._consumersChanged();
  }

  /**
   * Send one message. Resolves once the frame has been handed to the socket.
   * The promise has an internal no-op catch attached, so a send that is never
   * awaited does not crash the process when the channel breaks.
   */
  send(data) {
    if (!(data instanceof Uint8Array)) {
      return toPromiseWithNoopCatch(Promise.reject(new TypeError('send() expects a Buffer or Uint8Array')));
    }
    if (data.length > PROTOCOL.MAX_MESSAGE_SIZE) {
      return toPromiseWithNoopCatch(Promise.reject(new MessageTooLargeError(data.length, PROTOCOL.MAX_MESSAGE_SIZE)));
    }
    const socket = this._socket;
    if (this._writeClosed || socket.destroyed || !socket.writable) {
      return toPromiseWithNoopCatch(Promise.reject(channelClosedError()));
    }
    if (!this._corked) {
      // Batch every frame written in this tick into a single writev().
      this._corked = true;
      socket.cork();
      process.nextTick(uncorkChannel, this);
    }
    const promise = new Promise((resolve, reject) => {
      const done = (err) => (err ? reject(err) : resolve());
      const length = data.length;
      if (length <= COALESCE_LIMIT) {
        const frame = Buffer.allocUnsafe(PROTOCOL.HEADER_SIZE + length);
        frame.writeUInt32BE(length, 0);
        frame.set(data, PROTOCOL.HEADER_SIZE);
        socket.write(frame, done);
      } else {
        socket.write(encodeHeader(length));
        socket.write(data, done);
      }
    });
    return toPromiseWithNoopCatch(promise);
  }

  [Symbol.asyncIterator]() {
    const channel = this;
    let finished = false;
    let busy = false;
    channel._iterators++;

    const setBusy = (value) => {
      if (busy === value) return;
      busy = value;
      channel._busyIterators += value ? 1 : -1;
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      setBusy(false);
      channel._iterators--;
      channel._consumersChanged();
      channel._checkDrained();
    };

    return {
      next() {
        if (finished) return Promise.resolve({ value: undefined, done: true });
        setBusy(false);
        if (channel._inbox.length > 0 && !channel._handler) {
          const value = channel._take();
          setBusy(true);
          return Promise.resolve({ value, done: false });
        }
        if (channel._input === 'ended' && channel._inbox.length === 0) {
          finish();
          return Promise.resolve({ value: undefined, done: true });
        }
        if (channel._input === 'failed' && channel._inbox.length === 0) {
          finish();
          return Promise.reject(channel._inputError);
        }
        const promise = new Promise((resolve, reject) => {
          channel._waiters.push({ resolve, reject, setBusy, finish });
        });
        channel._checkDrained();
        return promise;
      },
      return(value) {
        finish();
        return Promise.resolve({ value, done: true });
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  _hasConsumer() {
    return this._handler !== null || this._iterators > 0;
  }

  _schedulePump() {
    if (this._pumpScheduled) return;
    this._pumpScheduled = true;
    process.nextTick(() => {
      this._pumpScheduled = false;
      this._pump();
    });
  }

  /** Queue a received message, hand it on if someone is waiting, stop reading if too much waits. */
  _deliver(payload) {
    this._inbox.push(payload);
    this._queuedBytes += payload.length + MESSAGE_CHARGE;
    this._pump();
    if (this._queuedBytes > READ_HIGH_WATER && !this._readPaused && this._mayPauseReading()) {
      this._readPaused = true;
      this._socket.pause();
    }
  }

  /** Take the oldest queued message; read again once the queue is short enough. */
  _take() {
    const payload = this._inbox.shift();
    this._queuedBytes -= payload.length + MESSAGE_CHARGE;
    if (this._readPaused && this._queuedBytes <= READ_LOW_WATER) this._resumeReading();
    return payload;
  }

  _resumeReading() {
    if (!this._readPaused) return;
    this._readPaused = false;
    if (!this._socket.destroyed) this._socket.resume();
  }

  _pump() {
    if (this._pumping) return;
    this._pumping = true;
    try {
      while (this._inbox.length > 0) {
        if (this._handler) {
          if (this._handlerBusy) break;
          this._callHandler(this._handler, this._take());
        } else if (this._waiters.length > 0) {
          const waiter = this._waiters.shift();
          waiter.setBusy(true);
          waiter.resolve({ value: this._take(), done: false });
        } else {
          break;
        }
      }
    } finally {
      this._pumping = false;
    }
    this._checkDrained();
  }

  _callHandler(handler, payload) {
    let result;
    try {
      result = handler.call(this, payload);
    } catch (err) {
      // Report like any exception thrown from an event callback, without
      // leaving the channel's own bookkeeping half-done.
      process.nextTick(() => {
        throw err;
      });
      return;
    }
    if (result && typeof result.then === 'function') {
      // The handler's pace is the back-pressure: the next message is
      // delivered once this one's promise settles.
      this._handlerBusy = true;
      Promise.resolve(result).then(this._handlerSettled, this._handlerFailed);
    }
  }

  /** The peer ended its stream at a frame boundary. */
  _inputEnded() {
    if (this._input !== 'open') return;
    this._input = 'ended';
    this._checkDrained();
  }

  /** The incoming stream failed; queued messages stay deliverable. */
  _inputFailed(err) {
    if (this._input !== 'open') return;
    this._input = 'failed';
    this._inputError = err;
    this._checkDrained();
  }

  _checkDrained() {
    if (this._input === 'open' || this._inbox.length > 0) return;
    // Wake up iterators that are waiting for a message that will never come.
    while (this._waiters.length > 0) {
      const waiter = this._waiters.shift();
      waiter.finish();
      if (this._input === 'ended') waiter.resolve({ value: undefined, done: true });
      else waiter.reject(this._inputError);
    }
    this._onInboxEmptyAfterEnd();
  }

  _finishWriting() {
    if (this._finishPromise) return this._finishPromise;
    this._writeClosed = true;
    const socket = this._socket;
    this._finishPromise = new Promise((resolve, reject) => {
      if (socket.destroyed) {
        reject(channelClosedError());
        return;
      }
      socket.end((err) => (err ? reject(err) : resolve()));
    });
    return toPromiseWithNoopCatch(this._finishPromise);
  }

  // hooks
  _mayPauseReading() {
    return true;
  }
  _consumersChanged() {}
  _onInboxEmptyAfterEnd() {}
}

function uncorkChannel(channel) {
  channel._corked = false;
  channel._socket.uncork();
}

// ---------------------------------------------------------------------------
// parent side

const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

function resolveCommand(file, args, isCommand, python) {
  if (isCommand) return [file, args];
  const ext = path.extname(file).toLowerCase();
  if (JS_EXTENSIONS.has(ext)) return [process.execPath, [file, ...args]];
  if (ext === '.py') {
    return [python || process.env.WORKER_PROCESS_PYTHON || 'python3', [file, ...args]];
  }
  return [file, args];
}

// O_CLOEXEC in the octal `flags:` line of /proc/self/fdinfo/<fd> (Linux).
const O_CLOEXEC = 0o2000000;
const SH = '/bin/sh';
const BASH = '/bin/bash';

/**
 * Descriptors above 3 that a child of this process would inherit: open
 * without close-on-exec. Node.js opens its own descriptors close-on-exec, so
 * these were inherited from this process's parent or opened by native code.
 */
function inheritableDescriptors() {
  let names;
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return []; // no /proc
  }
  const fds = [];
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > PROTOCOL.CHANNEL_FD)) continue;
    let info;
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    } catch {
      continue; // closed meanwhile (the directory listing's own descriptor)
    }
    const flags = /^flags:\s*([0-7]+)$/m.exec(info);
    if (flags && (parseInt(flags[1], 8) & O_CLOEXEC) === 0) fds.push(fd);
  }
  return fds.sort((a, b) => a - b);
}

function isExecutableFile(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Whether spawn() would find `command`, as it looks it up (PATH of the child's environment). */
function programExists(command, spawnOptions) {
  let cwd = spawnOptions.cwd === undefined || spawnOptions.cwd === null ? process.cwd() : spawnOptions.cwd;
  if (cwd instanceof URL) cwd = fileURLToPath(cwd);
  if (typeof cwd !== 'string') return false;
  if (command.includes('/')) return isExecutableFile(path.resolve(cwd, command));
  const env = spawnOptions.env || process.env;
  if (typeof env.PATH !== 'string') return false;
  return env.PATH.split(':').some((dir) => isExecutableFile(path.resolve(cwd, dir || '.', command)));
}

/**
 * libuv passes every descriptor without close-on-exec on to a child, and
 * Node.js cannot set the flag. When this process has such descriptors, start
 * the worker through a shell that closes them and then execs the program (same
 * process, so the pid and signals are the worker's). Returns the [command,
 * args] to spawn. dash only parses single-digit descriptors in redirections,
 * so descriptors above 9 need bash; without bash they stay open.
 */
function closeInheritedDescriptors(command, args, spawnOptions) {
  if (process.platform !== 'linux' || spawnOptions.shell || spawnOptions.argv0 !== undefined) return [command, args];
  let fds = inheritableDescriptors();
  if (fds.length === 0) return [command, args];
  let shell = SH;
  if (fds.some((fd) => fd > 9)) {
    if (isExecutableFile(BASH)) shell = BASH;
    else fds = fds.filter((fd) => fd <= 9);
  }
  // A program that cannot be found must fail the spawn (ENOENT), not exit 127.
  if (fds.length === 0 || !programExists(command, spawnOptions)) return [command, args];
  const script = `exec "$@" ${fds.map((fd) => `${fd}>&-`).join(' ')}`;
  // --posix: a non-interactive bash in POSIX mode reads no startup file ($BASH_ENV).
  const shellArgs = shell === BASH ? ['--posix', '-c', script] : ['-c', script];
  return [shell, [...shellArgs, 'worker-process', command, ...args]];
}

function buildStdio(stdio) {
  if (stdio === undefined || stdio === null) stdio = 'inherit';
  if (typeof stdio === 'string') return [stdio, stdio, stdio, 'pipe'];
  if (Array.isArray(stdio)) {
    if (stdio.length > 3) {
      throw new TypeError('options.stdio may only describe file descriptors 0-2; fd 3 is the channel');
    }
    const out = [];
    for (let i = 0; i < 3; i++) out.push(stdio[i] === undefined || stdio[i] === null ? 'inherit' : stdio[i]);
    out.push('pipe');
    return out;
  }
  throw new TypeError('options.stdio must be a string or an array of up to 3 entries');
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
      isCommand = false,
      python,
      handshakeTimeout = 60000,
      maxDuration = 60000,
      maxMessageSize,
      stdio,
      ...spawnOptions
    } = options;
    const limits = {
      handshakeTimeout: limitOption('handshakeTimeout', handshakeTimeout),
      maxDuration: limitOption('maxDuration', maxDuration),
    };
    // Validated here so that a bad value is reported before anything is spawned.
    new Decoder({ role: 'parent', maxMessageSize });
    spawnOptions.stdio = buildStdio(stdio);
    const [command, argv] = closeInheritedDescriptors(
      ...resolveCommand(file, args.map(String), isCommand, python),
      spawnOptions,
    );

    let child;
    try {
      child = spawn(command, argv, spawnOptions);
    } catch (err) {
      reject(err);
      return;
    }
    // eslint-disable-next-line no-new
    new Worker(INTERNAL, child, { ...limits, maxMessageSize, resolve, reject });
  });
}

class Worker extends Channel {
  constructor(token, child, opts) {
    if (token !== INTERNAL) throw new TypeError('Worker instances are created by createWorker()');
    const socket = child.stdio[3];
    super(socket, 'parent', opts.maxMessageSize);
    this._child = child;
    this._ready = { resolve: opts.resolve, reject: opts.reject };
    this._handshaken = false;
    this._failure = null;
    this._exit = null;
    this._inputDone = false;
    this._settled = false;
    this._timers = { handshake: null, duration: null, close: null, eofGrace: null, exitGrace: null };
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
    // gone), which would drop what the worker wrote and we have not read yet.
    // Read it straight from the descriptor before it is closed.
    const destroySocket = socket._destroy;
    socket._destroy = (err, callback) => {
      if (err) this._readRest();
      return destroySocket.call(socket, err, callback);
    };
    socket.on('data', (chunk) => {
      if (this._takingBuffered) return;
      this._onData(chunk);
      releaseChunk(socket, chunk);
    });
    socket.on('end', () => this._onEof());
    socket.on('error', (err) => this._onSocketError(err));
    socket.on('close', () => this._onSocketClose());
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
  close({ timeout = 5000 } = {}) {
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
      this._writeClosed = true;
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
    this._inputDone = true;
    this._timers.eofGrace = stopTimer(this._timers.eofGrace);
    if (!this._handshaken) {
      // Messages can only follow a handshake; nothing to deliver.
      return;
    }
    if (err) this._inputFailed(err);
    else this._inputEnded();
  }

  _onData(chunk) {
    if (this._inputDone) return;
    let events = [];
    let error = null;
    try {
      events = this._decoder.feed(chunk);
    } catch (err) {
      error = err;
    }
    // What preceded a protocol error in the same chunk is delivered first.
    error = error || this._decoder.error;
    for (const event of events) {
      if (event.type === 'message') {
        this._deliver(event.payload);
      } else if (event.type === 'handshake') {
        this._handshaken = true;
        this._timers.handshake = stopTimer(this._timers.handshake);
        this._ready.resolve(this);
      }
    }
    if (error) this._fail(error, true);
  }

  _onEof() {
    if (this._inputDone) return;
    try {
      this._decoder.end();
    } catch (err) {
      if (!this._handshaken) {
        // The worker closed the channel before answering. Give it a moment
        // to exit so the rejection can report its exit status instead.
        this._inputDone = true;
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
    if (!this._handshaken) {
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
    const handle = this._socket._handle;
    const fd = handle ? handle.fd : -1;
    if (!(Number.isInteger(fd) && fd >= 0)) return;
    const buffer = Buffer.allocUnsafe(64 * 1024);
    while (!this._inputDone) {
      let n;
      try {
        n = fs.readSync(fd, buffer, 0, buffer.length, null);
      } catch (err) {
        if (err.code === 'ECONNRESET') n = 0; // end of stream, see _onSocketError
        else return; // EAGAIN: the worker's side is still open
      }
      if (n === 0) {
        this._onEof();
        return;
      }
      // The decoder copies payloads out, so the buffer can be reused.
      this._onData(buffer.subarray(0, n));
    }
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
    const callbacks = this._reapedCallbacks;
    this._reapedCallbacks = [];
    for (const cb of callbacks) cb();
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
    if (this._settled || !this._exit || !this._inputDone) return;
    const exitInfo = { exitCode: this._exit.code, signal: this._exit.signal };
    if (!this._handshaken) {
      this._settled = true;
      this._clearTimers();
      let err = this._failure;
      if (err) {
        if (err.exitCode === undefined) Object.assign(err, exitInfo);
      } else {
        err = makeError(
          `worker exited before completing the handshake (${describeExit(this._exit)})`,
          'ERR_WORKER_EXITED',
          exitInfo,
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
        makeError(`worker ${describeExit(this._exit)}`, undefined, {
          code: this._exit.code,
          exitCode: this._exit.code,
          signal: this._exit.signal,
        }),
      );
    }
  }
}

function describeExit({ code, signal }) {
  return signal ? `was killed by ${signal}` : `exited with code ${code}`;
}

// ---------------------------------------------------------------------------
// worker side

const PF_EXITING = 0x4;

/**
 * Decide at end of stream whether the parent has gone away (returns a reason)
 * or merely ended its side of the channel (returns null).
 */
function parentGoneReason(originalPpid) {
  const ppid = process.ppid;
  if (ppid !== originalPpid) return `parent process ${originalPpid} is gone (re-parented to ${ppid})`;
  if (process.platform !== 'linux' || !(originalPpid > 0)) return null;
  let self;
  try {
    self = fs.readFileSync('/proc/self/stat', 'latin1');
  } catch {
    return null; // no usable /proc
  }
  if (!self) return null;
  let stat;
  try {
    stat = fs.readFileSync(`/proc/${originalPpid}/stat`, 'latin1');
  } catch {
    return `parent process ${originalPpid} is gone`;
  }
  // The command name is in parentheses and may itself contain ") ".
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const flags = Number(fields[6]);
  if (state === 'Z' || state === 'X') return `parent process ${originalPpid} has exited`;
  if (Number.isFinite(flags) && flags & PF_EXITING) return `parent process ${originalPpid} is exiting`;
  return null;
}

function channelBroke(message) {
  try {
    process.stderr.write(`worker-process: channel to the parent broke: ${message}\n`);
  } catch {
    // nothing left to report to
  }
  process.exit(1);
}

let connectPromise = null;

/**
 * Adopt file descriptor 3 as the channel to the parent and complete the
 * handshake. Calling it again returns the same promise.
 */
function connect(options) {
  if (connectPromise) return connectPromise;
  connectPromise = new Promise((resolve, reject) => {
    const { handshakeTimeout = 60000, maxMessageSize } = options || {};
    const timeout = limitOption('handshakeTimeout', handshakeTimeout);
    new Decoder({ role: 'worker', maxMessageSize }); // validate early
    const fd = PROTOCOL.CHANNEL_FD;
    let stat;
    try {
      stat = fs.fstatSync(fd);
    } catch (err) {
      reject(
        makeError(
          `no channel to a parent: file descriptor ${fd} is not open (${err.code}); ` +
            'start this program with createWorker()',
          'ERR_NO_CHANNEL',
          { cause: err },
        ),
      );
      return;
    }
    if (!stat.isSocket()) {
      reject(
        makeError(
          `no channel to a parent: file descriptor ${fd} is not a socket (${describeFileType(fd, stat)}); ` +
            'start this program with createWorker()',
          'ERR_NO_CHANNEL',
        ),
      );
      return;
    }
    let socket;
    let connection = null;
    try {
      socket = new net.Socket({
        fd,
        readable: true,
        writable: true,
        allowHalfOpen: true,
        // Read into one reused buffer (the decoder copies payloads out), so
        // reading allocates nothing per chunk.
        onread: {
          buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
          callback: (n, buffer) => {
            connection._onData(buffer.subarray(0, n));
          },
        },
      });
    } catch (err) {
      reject(makeError(`no channel to a parent: cannot use file descriptor ${fd}: ${err.message}`, 'ERR_NO_CHANNEL', { cause: err }));
      return;
    }
    connection = new Connection(INTERNAL, socket, { maxMessageSize, timeout, resolve, reject });
  });
  connectPromise.catch(() => {
    connectPromise = null;
  });
  return connectPromise;
}

function describeFileType(fd, stat) {
  let target = '';
  try {
    target = `: ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
  } catch {
    // no /proc
  }
  if (stat.isFIFO()) return `it is a pipe${target}`;
  if (stat.isFile()) return `it is a regular file${target}`;
  if (stat.isCharacterDevice()) return `it is a character device${target}`;
  if (stat.isDirectory()) return `it is a directory${target}`;
  if (stat.isBlockDevice()) return `it is a block device${target}`;
  // Node.js itself uses low descriptors, so an unrelated fd 3 usually means
  // the process was started directly rather than by createWorker().
  return `it is${target ? target.slice(1) : ' something else'}`;
}

class Connection extends Channel {
  constructor(token, socket, opts) {
    if (token !== INTERNAL) throw new TypeError('Connection instances are created by connect()');
    super(socket, 'worker', opts.maxMessageSize);
    this._ppid = process.ppid;
    this._ready = { resolve: opts.resolve, reject: opts.reject };
    this._handshaken = false;
    this._onend = null;
    this._endReached = false;
    this._onendCalled = false;
    this._timer = null;
    this._probingEnd = false;

    // Data arrives through the socket's onread callback (see connect()).
    socket.on('end', () => this._onEof());
    socket.on('error', (err) => {
      if (this._probingEnd) {
        channelBroke(`the parent closed the channel without finishing (${err.code || err.message})`);
      } else {
        channelBroke(err && err.message ? err.message : String(err));
      }
    });

    if (opts.timeout !== null) {
      this._timer = startTimer(opts.timeout, () => {
        this._timer = null;
        socket.destroy();
        this._ready.reject(makeError(`parent did not send the handshake within ${opts.timeout} ms`, 'ERR_HANDSHAKE_TIMEOUT'));
      });
    }
  }

  get onend() {
    return this._onend;
  }

  set onend(fn) {
    if (fn !== null && fn !== undefined && typeof fn !== 'function') {
      throw new TypeError('onend must be a function or null');
    }
    this._onend = fn || null;
    if (this._onend && this._endReached && !this._onendCalled) {
      process.nextTick(() => this._callOnend());
    }
  }

  /**
   * Flush every frame sent so far and end our write side. Once it resolves
   * the process may exit at once without losing anything.
   */
  finish() {
    return this._finishWriting();
  }

  _onData(chunk) {
    let events = [];
    let error = null;
    try {
      events = this._decoder.feed(chunk);
    } catch (err) {
      error = err;
    }
    error = error || this._decoder.error;
    if (error && events.length === 0) {
      channelBroke(error.message);
      return;
    }
    for (const event of events) {
      if (event.type === 'message') {
        this._deliver(event.payload);
      } else if (event.type === 'handshake') {
        this._handshaken = true;
        this._timer = stopTimer(this._timer);
        this._socket.write(Buffer.from([handshakeByte('worker')]));
        this._ready.resolve(this);
      }
    }
    if (error) channelBroke(error.message);
  }

  _onEof() {
    const gone = parentGoneReason(this._ppid);
    if (gone) {
      channelBroke(gone);
      return;
    }
    try {
      this._decoder.end();
    } catch (err) {
      channelBroke(err.message);
      return;
    }
    const socket = this._socket;
    if (this._writeClosed || socket.destroyed || !socket.writable) {
      // Once our side is finished, both kinds of end look the same to the
      // kernel too: take the end as clean.
      this._inputEnded();
      return;
    }
    // Tell a parent that finished (shutdown of its write side) from one that
    // released its socket: only the latter marks our side as unable to send,
    // so a zero-length write fails with EPIPE. It transfers nothing.
    this._probingEnd = true;
    socket.write(EMPTY, (err) => {
      this._probingEnd = false;
      if (err) channelBroke(`the parent closed the channel without finishing (${err.code || err.message})`);
      else this._inputEnded();
    });
  }

  _onInboxEmptyAfterEnd() {
    if (this._endReached || this._input !== 'ended') return;
    if (this._handlerBusy || this._busyIterators > 0) return;
    this._endReached = true;
    // Let code that runs right after a for-await loop (or after the last
    // handler call) still send before our side is ended.
    setImmediate(() => this._runEnd());
  }

  _runEnd() {
    const result = this._onend ? this._callOnend() : undefined;
    const finish = () => {
      this._finishWriting();
    };
    if (result && typeof result.then === 'function') {
      // Wait for an async onend; a rejection still surfaces as unhandled.
      Promise.resolve(result).then(finish, (err) => {
        finish();
        throw err;
      });
    } else {
      finish();
    }
  }

  _callOnend() {
    if (this._onendCalled) return undefined;
    this._onendCalled = true;
    try {
      return this._onend.call(this);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
      return undefined;
    }
  }
}

require('./lib/request').installRequest(Worker);

module.exports = {
  createWorker,
  connect,
  Worker,
  Connection,
  PROTOCOL,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  Decoder,
  encodeHeader,
  handshakeByte,
  ...require('./lib/request').api,
  ...require('./lib/serve').api,
  ...require('./lib/pool').api,
};
