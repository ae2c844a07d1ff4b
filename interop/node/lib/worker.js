'use strict';

// The worker side: connect() and Connection.

const fs = require('node:fs');
const net = require('node:net');

const { Channel } = require('./channel');
const { PROTOCOL, Decoder, handshakeByte } = require('./codec');
const { defaults } = require('./defaults');
const { makeError } = require('./errors');
const { startTimer, stopTimer, limitOption } = require('./timer');

const INTERNAL = Symbol('worker-process.worker');

const EMPTY = Buffer.alloc(0);

// The worker reads its channel into one reused buffer of this size.
const READ_BUFFER_SIZE = 64 * 1024;

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
    const {
      handshakeTimeout = defaults.connect.handshakeTimeout,
      maxMessageSize = defaults.connect.maxMessageSize,
    } = options || {};
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
    const error = this._feed(chunk);
    if (error) channelBroke(error.message);
  }

  _onHandshake() {
    this._timer = stopTimer(this._timer);
    this._socket.write(Buffer.from([handshakeByte('worker')]));
    this._ready.resolve(this);
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
    if (this._state.sendOutcome !== 'queue' || socket.destroyed || !socket.writable) {
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
    if (this._endReached || this._state.receiveOutcome !== 'done') return;
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

module.exports = { connect, Connection };
