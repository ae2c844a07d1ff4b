'use strict';

// Request/response on top of a Worker's messages (spec/requests.md, section
// 1): the worker answers each request with exactly one reply, in order. There
// are no ids on the wire, so the n-th reply belongs to the n-th request, and
// any worker that answers one-for-one works unchanged.
//
// Built on the Worker's public surface only (send, async iteration,
// onmessage, lifetime, pid), so it does not depend on how the channel is
// implemented.

const { Fifo } = require('./queue');

const MAX_MESSAGE_SIZE = 0xffffffff;

// After the worker's stream ended or broke, how long to wait for its exit
// status so that the error can say how it died.
const EXIT_STATUS_GRACE = 1000;

const noop = () => {};

/** The worker ended its stream, broke or died before replying. */
class NoReplyError extends Error {
  constructor(message, { pid, exitCode = null, signal = null, cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'NoReplyError';
    this.code = 'ERR_NO_REPLY';
    this.pid = pid;
    this.exitCode = exitCode;
    this.signal = signal;
  }
}

/** No reply within the request's timeout. */
class RequestTimeoutError extends Error {
  constructor(message, { timeout, pid }) {
    super(message);
    this.name = 'RequestTimeoutError';
    this.code = 'ERR_REQUEST_TIMEOUT';
    this.timeout = timeout;
    this.pid = pid;
  }
}

/** A reader (onmessage, an iterator) and request() both wanted the worker's messages. */
class RequestConflictError extends Error {
  constructor(what) {
    super(`${what}: while requests wait for their replies, the worker's messages are those replies`);
    this.name = 'RequestConflictError';
    this.code = 'ERR_REQUEST_CONFLICT';
  }
}

function timeoutOption(value) {
  if (value === undefined || value === null || value === 0 || value === Infinity) return null;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`timeout must be a non-negative number of milliseconds, 0, Infinity or null; got ${String(value)}`);
  }
  return value;
}

/** The property descriptor `name` that `proto` has or inherits. */
function findDescriptor(proto, name) {
  for (; proto; proto = Object.getPrototypeOf(proto)) {
    const descriptor = Object.getOwnPropertyDescriptor(proto, name);
    if (descriptor) return descriptor;
  }
  return null;
}

function describeExit(exitCode, signal) {
  return signal ? `was killed by ${signal}` : `exited with code ${exitCode}`;
}

/**
 * Wait a bounded time for the worker's exit status and build the error that
 * explains why no reply came. `cause` is the stream's failure, if any.
 */
function explainNoReply(worker, cause) {
  const pid = worker.pid;
  let timer;
  const grace = new Promise((resolve) => {
    timer = setTimeout(resolve, EXIT_STATUS_GRACE, { running: true });
  });
  const exited = worker.lifetime.then(
    () => ({ exitCode: 0, signal: null }),
    (err) => ({ exitCode: err.exitCode ?? null, signal: err.signal ?? null, err }),
  );
  return Promise.race([exited, grace]).then((status) => {
    clearTimeout(timer);
    if (status.running) {
      const what = cause ? `its channel broke (${cause.message})` : 'it ended its stream';
      return new NoReplyError(`worker ${pid} did not reply: ${what}`, { pid, cause });
    }
    let reason = describeExit(status.exitCode, status.signal);
    if (status.err && status.exitCode === null && status.signal === null) reason = `failed (${status.err.message})`;
    return new NoReplyError(`worker ${pid} ${reason} before replying`, {
      pid,
      exitCode: status.exitCode,
      signal: status.signal,
      cause: cause || status.err,
    });
  });
}

/** The requests of one worker that wait for their replies, oldest first. */
class RequestQueue {
  constructor(worker) {
    this.worker = worker;
    this.entries = new Fifo();
    this.receiving = false;
    this.ended = null; // a promise of the error once the stream has ended or broken
    this.readers = 0; // next() calls of the application's iterators that wait for a message
  }

  get pending() {
    return this.entries.length > 0;
  }

  add(data, timeout) {
    if (this.ended) return this.ended.then((err) => Promise.reject(err));
    if (!this.pending && original.onmessage.get.call(this.worker)) {
      return Promise.reject(new RequestConflictError('request() cannot be used while onmessage is set'));
    }
    if (this.readers > 0) {
      return Promise.reject(new RequestConflictError('request() cannot be used while an iterator waits for a message'));
    }
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject, settled: false, timer: null };
      this.entries.push(entry);
      if (timeout !== null) {
        // The entry stays queued: its reply, when it comes, is dropped.
        entry.timer = setTimeout(() => {
          const pid = this.worker.pid;
          settle(entry, null, new RequestTimeoutError(`worker ${pid} did not reply within ${timeout} ms`, { timeout, pid }));
        }, timeout);
      }
      this.worker.send(data).then(noop, (err) => {
        // Refused before anything was written (the channel is closed for
        // sending): no reply will come for this request or any later one.
        // Other write errors mean the worker is gone; the end of its stream
        // explains that to every pending request.
        if (err && err.code === 'ERR_CHANNEL_CLOSED') settle(entry, null, err);
      });
      this.receive();
    });
  }

  async receive() {
    if (this.receiving) return;
    this.receiving = true;
    const iterator = original.iterate.call(this.worker);
    let failure = null;
    let ended = false;
    try {
      while (this.pending) {
        let next;
        try {
          next = await iterator.next();
        } catch (err) {
          failure = err;
          ended = true;
          break;
        }
        if (next.done) {
          ended = true;
          break;
        }
        const entry = this.entries.shift();
        settle(entry, next.value, null);
      }
    } finally {
      // No next() is outstanding here, so no later message can be taken by
      // this iterator.
      if (!ended) iterator.return();
      this.receiving = false;
    }
    if (ended) this.end(failure);
  }

  end(failure) {
    this.ended = explainNoReply(this.worker, failure);
    const entries = this.entries.drain();
    this.ended.then((err) => {
      for (const entry of entries) settle(entry, null, err);
    });
  }
}

function settle(entry, value, err) {
  if (entry.settled) return;
  entry.settled = true;
  if (entry.timer) clearTimeout(entry.timer);
  if (err) entry.reject(err);
  else entry.resolve(value);
}

const queues = new WeakMap();

function queueOf(worker) {
  let queue = queues.get(worker);
  if (!queue) {
    queue = new RequestQueue(worker);
    queues.set(worker, queue);
  }
  return queue;
}

function pendingRequests(worker) {
  const queue = queues.get(worker);
  return queue !== undefined && queue.pending;
}

/**
 * Send `data` as a request and resolve with the worker's reply to it.
 * Replies are matched to requests in order, so requests may be pipelined.
 */
function request(data, options) {
  if (!(data instanceof Uint8Array)) {
    return Promise.reject(new TypeError('request() expects a Buffer or Uint8Array'));
  }
  if (data.length > MAX_MESSAGE_SIZE) {
    return Promise.reject(new RangeError(`a message holds at most ${MAX_MESSAGE_SIZE} bytes; got ${data.length}`));
  }
  let timeout;
  try {
    timeout = timeoutOption(options ? options.timeout : undefined);
  } catch (err) {
    return Promise.reject(err);
  }
  return queueOf(this).add(data, timeout);
}

/** What the Worker class had before installRequest() guarded it. */
const original = { onmessage: null, iterate: null };

/**
 * Give `WorkerClass` its request() method, and make its other readers
 * (onmessage, iteration) refuse while requests wait for their replies.
 */
function installRequest(WorkerClass) {
  const proto = WorkerClass.prototype;
  original.onmessage = findDescriptor(proto, 'onmessage');
  original.iterate = proto[Symbol.asyncIterator];
  const define = (name, descriptor) => Object.defineProperty(proto, name, { configurable: true, enumerable: false, ...descriptor });
  define('request', { writable: true, value: request });
  define('onmessage', {
    get() {
      return original.onmessage.get.call(this);
    },
    set(fn) {
      if (fn && pendingRequests(this)) throw new RequestConflictError('onmessage cannot be set');
      original.onmessage.set.call(this, fn);
    },
  });
  define(Symbol.asyncIterator, {
    writable: true,
    value() {
      const worker = this;
      const iterator = original.iterate.call(worker);
      const done = () => {
        queueOf(worker).readers--;
      };
      return {
        next() {
          if (pendingRequests(worker)) return Promise.reject(new RequestConflictError('the worker cannot be read'));
          queueOf(worker).readers++;
          const promise = iterator.next();
          promise.then(done, done);
          return promise;
        },
        return(value) {
          return iterator.return(value);
        },
        [Symbol.asyncIterator]() {
          return this;
        },
      };
    },
  });
}

module.exports = {
  request,
  installRequest,
  NoReplyError,
  RequestTimeoutError,
  RequestConflictError,
  /** What the package exports. */
  api: { NoReplyError, RequestTimeoutError, RequestConflictError },
};
