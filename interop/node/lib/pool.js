'use strict';

// A pool of worker processes answering requests (spec/requests.md, section
// 3): keeps `size` workers busy, replaces a worker that dies or times out,
// retries the request it died on, recycles workers after a number of
// requests, and fails fast when workers cannot start.

const os = require('node:os');

const { Fifo } = require('./queue');
const { RequestTimeoutError } = require('./request');
const { decodeReply } = require('./serve');

const noop = () => {};

/** The pool refused or dropped a request: `reason` is 'closed', 'terminated' or 'broken'. */
class PoolError extends Error {
  constructor(message, reason, cause) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'PoolError';
    this.reason = reason;
    this.code = `ERR_POOL_${reason.toUpperCase()}`;
  }
}

function durationOption(name, value) {
  if (value === undefined || value === null || value === 0 || value === Infinity) return null;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number of milliseconds, 0, Infinity or null; got ${String(value)}`);
  }
  return value;
}

function countOption(name, value, { min, nullable = false }) {
  if (nullable && (value === undefined || value === null || value === 0 || value === Infinity)) return null;
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}${nullable ? ', 0, Infinity or null' : ''}; got ${String(value)}`);
  }
  return value;
}

function defaultSize() {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length || 1;
}

/** Queue of tasks: retried ones go back to the front, in submission order. */
class TaskQueue {
  constructor() {
    this._front = []; // sorted by seq
    this._rest = new Fifo();
  }

  get length() {
    return this._front.length + this._rest.length;
  }

  push(task) {
    this._rest.push(task);
  }

  requeue(task) {
    let i = this._front.length;
    while (i > 0 && this._front[i - 1].seq > task.seq) i--;
    this._front.splice(i, 0, task);
  }

  shift() {
    return this._front.length > 0 ? this._front.shift() : this._rest.shift();
  }

  drain() {
    const tasks = [...this._front, ...this._rest.drain()];
    this._front = [];
    return tasks;
  }
}

class Pool {
  constructor(file, args, options) {
    const {
      size = defaultSize(),
      maxRetries = 1,
      timeout = null,
      maxRequestsPerWorker = null,
      concurrency = 2,
      raw = false,
      remotes = null,
      ...workerOptions
    } = options;
    if (remotes !== null) {
      if (!Array.isArray(remotes) || remotes.length === 0) {
        throw new TypeError('options.remotes must be a non-empty array of remote targets');
      }
      if (workerOptions.remote !== undefined && workerOptions.remote !== null) {
        throw new TypeError('give options.remote (every worker) or options.remotes (in turn), not both');
      }
    }
    this.size = countOption('size', size, { min: 1 });
    this.maxRetries = countOption('maxRetries', maxRetries, { min: 0 });
    this.timeout = durationOption('timeout', timeout);
    this.maxRequestsPerWorker = countOption('maxRequestsPerWorker', maxRequestsPerWorker, { min: 1, nullable: true });
    this.concurrency = countOption('concurrency', concurrency, { min: 1 });
    this.raw = Boolean(raw);
    this._file = file;
    this._args = args;
    // The pool decides how long a worker lives; each request has its own timeout.
    this._workerOptions = { maxDuration: null, ...workerOptions };
    // One pool across hosts: each worker started takes the next target in turn.
    this._remotes = remotes;
    this._started = 0;
    this._queue = new TaskQueue();
    this._slots = new Set();
    this._seq = 0;
    this._inFlight = 0;
    this._state = 'open'; // 'open' | 'closing' | 'closed' | 'terminated' | 'broken'
    this._brokenError = null;
    this._exits = new Set(); // promises of workers being reaped
    this._idleWaiters = [];
  }

  /** Workers currently running (pids), for inspection. */
  get pids() {
    const pids = [];
    for (const slot of this._slots) if (slot.worker) pids.push(slot.worker.pid);
    return pids;
  }

  /** Requests waiting for a worker. */
  get queued() {
    return this._queue.length;
  }

  async _start() {
    const slots = [];
    for (let i = 0; i < this.size; i++) slots.push(this._newSlot());
    const results = await Promise.allSettled(slots.map((slot) => slot.starting));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      await this.terminate();
      throw failed.reason;
    }
  }

  _newSlot() {
    const { createWorker } = require('../index.js');
    const slot = { worker: null, inFlight: [], served: 0, retiring: false, dead: false, timer: null, starting: null };
    this._slots.add(slot);
    let options = this._workerOptions;
    if (this._remotes !== null) {
      options = { ...options, remote: this._remotes[this._started % this._remotes.length] };
    }
    this._started += 1;
    slot.starting = createWorker(this._file, this._args, options).then(
      (worker) => {
        slot.starting = null;
        slot.worker = worker;
        this._track(worker);
        // A worker that dies between requests is replaced at once, so that no
        // request is charged for it. One that holds requests is handled
        // when they fail.
        const gone = () => {
          if (slot.dead || slot.inFlight.length > 0) return;
          this._kill(slot);
          this._replace();
        };
        worker.lifetime.then(gone, gone);
        if (this._state === 'terminated') this._kill(slot);
        else this._dispatch();
      },
      (err) => {
        slot.starting = null;
        this._slots.delete(slot);
        this._break(err);
        throw err;
      },
    );
    slot.starting.catch(noop);
    return slot;
  }

  _track(worker) {
    // lifetime settles once the worker is reaped and its stream read.
    const exit = worker.lifetime.then(noop, noop);
    this._exits.add(exit);
    exit.then(() => this._exits.delete(exit));
  }

  /** A worker failed to start: stop starting workers and fail what waits. */
  _break(err) {
    if (this._state !== 'open' && this._state !== 'closing') return;
    this._brokenError = new PoolError(`a worker failed to start: ${err.message}`, 'broken', err);
    this._state = 'broken';
    for (const task of this._queue.drain()) task.reject(this._brokenError);
    this._checkIdle();
  }

  /**
   * Run one request on a worker. Resolves with its reply; rejects with the
   * worker's RemoteError, a RequestTimeoutError, the worker's death (after
   * `maxRetries` retries on other workers) or a PoolError.
   */
  submit(data, options) {
    if (!(data instanceof Uint8Array)) return Promise.reject(new TypeError('submit() expects a Buffer or Uint8Array'));
    if (this._state !== 'open') return Promise.reject(this._refusal());
    let timeout;
    try {
      timeout = options && options.timeout !== undefined ? durationOption('timeout', options.timeout) : this.timeout;
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise((resolve, reject) => {
      this._queue.push({ data, resolve, reject, attempts: 0, timeout, seq: this._seq++ });
      this._dispatch();
    });
  }

  _refusal() {
    if (this._state === 'broken') return this._brokenError;
    if (this._state === 'terminated') return new PoolError('the pool was terminated', 'terminated');
    return new PoolError('the pool is closed', 'closed');
  }

  _dispatch() {
    while (this._queue.length > 0) {
      let best = null;
      for (const slot of this._slots) {
        if (!slot.worker || slot.dead || slot.retiring || slot.inFlight.length >= this.concurrency) continue;
        if (!best || slot.inFlight.length < best.inFlight.length) best = slot;
      }
      if (!best) return;
      this._send(best, this._queue.shift());
    }
  }

  _send(slot, task) {
    slot.inFlight.push(task);
    slot.served++;
    this._inFlight++;
    if (slot.inFlight.length === 1) this._armTimer(slot);
    if (this.maxRequestsPerWorker !== null && slot.served >= this.maxRequestsPerWorker) slot.retiring = true;
    slot.worker.request(task.data).then(
      (reply) => this._onReply(slot, task, reply),
      (err) => this._onWorkerLost(slot, err),
    );
  }

  _armTimer(slot) {
    slot.timer = null;
    const head = slot.inFlight[0];
    if (!head || head.timeout === null) return;
    // The head is the request the worker is working on now.
    slot.timer = setTimeout(() => this._onTimeout(slot, head), head.timeout);
  }

  _onReply(slot, task, reply) {
    if (slot.dead) return;
    slot.inFlight.shift();
    this._inFlight--;
    clearTimeout(slot.timer);
    this._armTimer(slot);
    if (this.raw) {
      task.resolve(reply);
    } else {
      try {
        task.resolve(decodeReply(reply));
      } catch (err) {
        task.reject(err);
      }
    }
    if (slot.retiring && slot.inFlight.length === 0) this._retire(slot);
    this._dispatch();
    this._checkIdle();
  }

  /** The worker died, ended its stream or broke: retry its requests elsewhere. */
  _onWorkerLost(slot, err) {
    if (slot.dead) return;
    const [head, ...rest] = this._kill(slot);
    // The worker answers in order, so it was working on the oldest request;
    // the others never started and go back without counting an attempt.
    head.attempts++;
    if (head.attempts > this.maxRetries || this._state === 'terminated') head.reject(err);
    else this._queue.requeue(head);
    for (const task of rest) this._queue.requeue(task);
    this._replace();
  }

  _onTimeout(slot, head) {
    if (slot.dead || slot.inFlight[0] !== head) return;
    const pid = slot.worker.pid;
    const [, ...rest] = this._kill(slot);
    head.reject(
      new RequestTimeoutError(`worker ${pid} did not reply within ${head.timeout} ms; it was killed and replaced`, {
        timeout: head.timeout,
        pid,
      }),
    );
    for (const task of rest) this._queue.requeue(task);
    this._replace();
  }

  /** Kill a slot's worker and forget the slot; returns the requests it held. */
  _kill(slot) {
    slot.dead = true;
    clearTimeout(slot.timer);
    this._slots.delete(slot);
    const tasks = slot.inFlight;
    slot.inFlight = [];
    this._inFlight -= tasks.length;
    if (slot.worker) {
      slot.worker.kill('SIGKILL');
      this._closeWorker(slot.worker);
    }
    return tasks;
  }

  _closeWorker(worker) {
    const closed = worker.close().then(noop, noop);
    this._exits.add(closed);
    closed.then(() => this._exits.delete(closed));
  }

  /** Recycle a worker that served maxRequestsPerWorker requests. */
  _retire(slot) {
    slot.dead = true;
    this._slots.delete(slot);
    this._closeWorker(slot.worker);
    this._replace();
  }

  _replace() {
    if (this._state === 'open' || (this._state === 'closing' && this._queue.length > 0)) this._newSlot();
    else if (this._state === 'broken') for (const task of this._queue.drain()) task.reject(this._brokenError);
    this._dispatch();
    this._checkIdle();
  }

  _checkIdle() {
    if (this._inFlight > 0 || this._queue.length > 0) return;
    const waiters = this._idleWaiters;
    this._idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /**
   * Results of `fn`-less requests for every input, in input order, while at
   * most `window` requests are in flight (default: twice the pool's
   * capacity). `inputs` may be sync or async iterable; it is read lazily.
   */
  map(inputs, options) {
    return this._results(inputs, options, true);
  }

  /** Like map(), but yields each result as soon as it is ready. */
  imapUnordered(inputs, options) {
    return this._results(inputs, options, false);
  }

  async *_results(inputs, options, ordered) {
    const window = countOption('window', (options && options.window) ?? this.size * this.concurrency * 2, { min: 1 });
    const source = inputs[Symbol.asyncIterator] ? inputs[Symbol.asyncIterator]() : inputs[Symbol.iterator]();
    const submitOptions = options && options.timeout !== undefined ? { timeout: options.timeout } : undefined;
    const pending = []; // ordered: promises in input order
    const done = []; // unordered: settled results in completion order
    let inFlight = 0;
    let wake = null;
    let exhausted = false;
    try {
      for (;;) {
        while (!exhausted && inFlight < window) {
          const next = await source.next();
          if (next.done) {
            exhausted = true;
            break;
          }
          inFlight++;
          const promise = this.submit(next.value, submitOptions);
          if (ordered) {
            promise.catch(noop);
            pending.push(promise);
          } else {
            promise.then(
              (value) => done.push({ value }),
              (error) => done.push({ error }),
            ).then(() => {
              if (wake) wake();
            });
          }
        }
        if (inFlight === 0) return;
        if (ordered) {
          const value = await pending.shift();
          inFlight--;
          yield value;
        } else {
          while (done.length === 0) await new Promise((resolve) => (wake = resolve));
          wake = null;
          const result = done.shift();
          inFlight--;
          if (result.error) throw result.error;
          yield result.value;
        }
      }
    } finally {
      if (!exhausted && typeof source.return === 'function') await source.return();
    }
  }

  /**
   * Stop taking requests, let every submitted one finish, then end every
   * worker's channel and wait until all are reaped.
   */
  async close() {
    if (this._state === 'open') this._state = 'closing';
    if (this._state === 'terminated') return this._reapAll();
    await new Promise((resolve) => {
      this._idleWaiters.push(resolve);
      this._checkIdle();
    });
    if (this._state === 'closing') this._state = 'closed';
    for (const slot of [...this._slots]) {
      if (slot.starting) await slot.starting.catch(noop);
      if (!slot.worker || slot.dead) continue;
      slot.dead = true;
      this._slots.delete(slot);
      this._closeWorker(slot.worker);
    }
    return this._reapAll();
  }

  /** Fail every pending request, kill every worker and wait until all are reaped. */
  async terminate() {
    this._state = 'terminated';
    const error = new PoolError('the pool was terminated', 'terminated');
    for (const task of this._queue.drain()) task.reject(error);
    const starting = [];
    for (const slot of [...this._slots]) {
      if (slot.starting) {
        starting.push(slot.starting.catch(noop));
        continue;
      }
      for (const task of this._kill(slot)) task.reject(error);
    }
    this._checkIdle();
    await Promise.all(starting); // those that start are killed at once
    return this._reapAll();
  }

  async _reapAll() {
    while (this._exits.size > 0) await Promise.all([...this._exits]);
  }
}

/**
 * Start a pool of `size` workers running `file` and wait until all of them
 * have completed the handshake. Rejects (after reaping what started) when
 * one cannot start.
 */
async function createPool(file, args, options) {
  if (args !== undefined && args !== null && !Array.isArray(args) && typeof args === 'object' && options === undefined) {
    options = args;
    args = [];
  }
  if (typeof file !== 'string' || file.length === 0) throw new TypeError('file must be a non-empty string');
  const pool = new Pool(file, args || [], options || {});
  await pool._start();
  return pool;
}

module.exports = {
  createPool,
  Pool,
  PoolError,
  /** What the package exports. */
  api: { createPool, Pool, PoolError },
};
