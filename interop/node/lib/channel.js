'use strict';

// What the parent's Worker and the worker's Connection share: the inbox with
// its water marks, delivery to onmessage or async iterators, framing of sends,
// and the per-direction channel state (./state).

const { PROTOCOL, Decoder, MessageTooLargeError, encodeHeader } = require('./codec');
const { channelClosedError } = require('./errors');
const { Fifo } = require('./queue');
const { ChannelState } = require('./state');

// Payloads up to this size are copied behind their header so that a frame is
// a single chunk for the socket; larger payloads are written as they are.
const COALESCE_LIMIT = 16 * 1024;

// Read-side back-pressure: reading stops while more than READ_HIGH_WATER bytes
// of received messages wait for the application, and starts again once they
// are down to READ_LOW_WATER. A single larger message is still delivered: the
// marks bound the queue, not a message. Each queued message also counts
// MESSAGE_CHARGE bytes for its object, so that a flood of empty messages is
// bounded too.
const READ_HIGH_WATER = 4 * 1024 * 1024;
const READ_LOW_WATER = 1024 * 1024;
const MESSAGE_CHARGE = 64;

const noop = () => {};

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

function rethrow(err) {
  throw err;
}

function toPromiseWithNoopCatch(promise) {
  promise.catch(noop);
  return promise;
}

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
    this._state = new ChannelState();
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
    const refusal = this._sendRefusal();
    if (refusal) return toPromiseWithNoopCatch(this._explain(refusal).then(rethrow));
    if (!this._corked) {
      // Batch every frame written in this tick into a single writev().
      this._corked = true;
      socket.cork();
      process.nextTick(uncorkChannel, this);
    }
    const promise = new Promise((resolve, reject) => {
      const done = (err) => {
        // Node.js completes a write still pending when its socket is destroyed
        // without an error; if the direction broke or closed meanwhile (the
        // peer is gone, the socket failed) nobody will read the frame.
        if (!err && socket.destroyed && this._state.sendOutcome !== 'queue') err = channelClosedError();
        if (err) this._sendFailed(err).then(reject);
        else resolve();
      };
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
        const outcome = channel._inbox.length === 0 ? channel._state.receiveOutcome : 'wait';
        if (outcome === 'done') {
          finish();
          return Promise.resolve({ value: undefined, done: true });
        }
        if (outcome === 'error') {
          finish();
          return Promise.reject(channel._receiveFailure());
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

  /**
   * Decode `chunk`, deliver its messages and take its handshake. Returns the
   * protocol error it hit (after delivering what preceded it), or null.
   */
  _feed(chunk) {
    let events = [];
    let error = null;
    try {
      events = this._decoder.feed(chunk);
    } catch (err) {
      error = err;
    }
    error = error || this._decoder.error;
    for (const event of events) {
      if (event.type === 'message') {
        this._deliver(event.payload);
      } else if (event.type === 'handshake') {
        this._state.receive('handshake');
        this._onHandshake();
      }
    }
    return error;
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
    if (this._state.receive('end')) this._checkDrained();
  }

  /** The incoming stream failed; queued messages stay deliverable. */
  _inputFailed(err) {
    if (this._state.receive('fail', err)) this._checkDrained();
  }

  _checkDrained() {
    const outcome = this._state.receiveOutcome;
    if (outcome === 'wait' || this._inbox.length > 0) return;
    // Wake up iterators that are waiting for a message that will never come.
    while (this._waiters.length > 0) {
      const waiter = this._waiters.shift();
      waiter.finish();
      if (outcome === 'error') waiter.reject(this._receiveFailure());
      else waiter.resolve({ value: undefined, done: true });
    }
    this._onInboxEmptyAfterEnd();
  }

  _finishWriting() {
    if (this._finishPromise) return this._finishPromise;
    const socket = this._socket;
    this._finishPromise = new Promise((resolve, reject) => {
      if (socket.destroyed || !this._state.send('finish')) {
        reject(this._sendRefusal() || channelClosedError());
        return;
      }
      socket.end((err) => {
        if (err) {
          this._state.send('fail', err);
          reject(err);
        } else {
          this._state.send('finished');
          resolve();
        }
      });
    });
    return toPromiseWithNoopCatch(this._finishPromise);
  }

  /** Why send() must refuse now (an error to reject with), or null. */
  _sendRefusal() {
    const outcome = this._state.sendOutcome;
    if (outcome === 'error') {
      // The sends whose write failed got that error; later ones are refused.
      const err = channelClosedError();
      if (this._state.sendError) err.cause = this._state.sendError;
      return err;
    }
    const socket = this._socket;
    if (outcome === 'closed' || socket.destroyed || !socket.writable) return channelClosedError();
    return null;
  }

  /** A write failed: the direction is broken. Resolves with the error to report. */
  _sendFailed(err) {
    this._state.send('fail', err);
    return this._explain(err);
  }

  /** The error to report for `err` (a transport may know more, e.g. that the peer died). */
  _explain(err) {
    return Promise.resolve(err);
  }

  /** The error a receive gets once the incoming stream broke. */
  _receiveFailure() {
    return this._state.receiveError;
  }

  // hooks
  _onHandshake() {}
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

module.exports = { Channel, releaseChunk, READ_HIGH_WATER, READ_LOW_WATER };
