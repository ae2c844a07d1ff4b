'use strict';

// Sans-I/O codec for the worker-process wire format.
//
// Wire format:
//   parent -> worker : one byte 0x00 (handshake)
//   worker -> parent : one byte 0x01 (handshake)
//   then, in both directions: frames made of a 4-byte big-endian unsigned
//   payload length followed by that many payload bytes.
// End of stream is the only close signal.

const { constants: bufferConstants } = require('node:buffer');

const PROTOCOL = Object.freeze({
  /** Byte the parent sends first. */
  PARENT_HANDSHAKE: 0x00,
  /** Byte the worker answers with. */
  WORKER_HANDSHAKE: 0x01,
  /** Size of a frame header in bytes. */
  HEADER_SIZE: 4,
  /** Largest payload length the wire can express (2^32 - 1). */
  MAX_MESSAGE_SIZE: 0xffffffff,
  /** File descriptor of the channel in the worker process. */
  CHANNEL_FD: 3,
});

// Largest payload this process can hold in a single Buffer.
const EFFECTIVE_MAX_MESSAGE_SIZE = Math.min(PROTOCOL.MAX_MESSAGE_SIZE, bufferConstants.MAX_LENGTH);

class ProtocolError extends Error {
  constructor(message, code) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

class HandshakeError extends ProtocolError {
  constructor(expected, got) {
    super(
      `bad handshake byte: expected 0x${hex(expected)}, got 0x${hex(got)}`,
      'ERR_BAD_HANDSHAKE',
    );
    this.expected = expected;
    this.got = got;
  }
}

class MessageTooLargeError extends ProtocolError {
  constructor(length, limit) {
    super(`message of ${length} bytes exceeds the limit of ${limit} bytes`, 'ERR_MESSAGE_TOO_LARGE');
    this.length = length;
    this.limit = limit;
  }
}

class TruncatedStreamError extends ProtocolError {
  constructor(stage, missing) {
    super(`stream ended inside the ${stage} (${missing} byte${missing === 1 ? '' : 's'} missing)`, 'ERR_TRUNCATED');
    this.stage = stage;
    this.missing = missing;
  }
}

function hex(n) {
  return (n & 0xff).toString(16).padStart(2, '0');
}

function checkRole(role) {
  if (role !== 'parent' && role !== 'worker') {
    throw new TypeError(`role must be 'parent' or 'worker', got ${String(role)}`);
  }
}

/**
 * Resolve a user supplied maxMessageSize to the limit actually enforced.
 * `undefined`/`null` mean "as large as possible".
 */
function resolveMaxMessageSize(value) {
  if (value === undefined || value === null) return EFFECTIVE_MAX_MESSAGE_SIZE;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0 || (Number.isFinite(value) && !Number.isInteger(value))) {
    throw new RangeError(`maxMessageSize must be a non-negative integer, got ${String(value)}`);
  }
  return Math.min(value, EFFECTIVE_MAX_MESSAGE_SIZE);
}

/** The handshake byte that `role` sends. */
function handshakeByte(role) {
  checkRole(role);
  return role === 'parent' ? PROTOCOL.PARENT_HANDSHAKE : PROTOCOL.WORKER_HANDSHAKE;
}

/** Encode a frame header for a payload of `length` bytes. */
function encodeHeader(length) {
  if (!Number.isInteger(length) || length < 0) {
    throw new RangeError(`frame length must be a non-negative integer, got ${String(length)}`);
  }
  if (length > PROTOCOL.MAX_MESSAGE_SIZE) {
    throw new MessageTooLargeError(length, PROTOCOL.MAX_MESSAGE_SIZE);
  }
  const header = Buffer.allocUnsafe(PROTOCOL.HEADER_SIZE);
  header.writeUInt32BE(length, 0);
  return header;
}

const EMPTY = Buffer.alloc(0);

// A payload that does not arrive in one chunk is assembled in a buffer that
// starts at most this big (or twice what already arrived, if more) and doubles
// as bytes arrive, up to the announced length: a header announcing 4 GiB
// followed by nothing must not cost 4 GiB.
const PREALLOCATE = 16 * 1024 * 1024;

// Decoder states.
const S_HANDSHAKE = 0;
const S_HEADER = 1;
const S_PAYLOAD = 2;
const S_ENDED = 3;

/**
 * Incremental decoder for one direction of the channel.
 *
 * `role` is the role of the local side: a parent's decoder expects the
 * worker's 0x01 first, a worker's decoder expects the parent's 0x00.
 */
class Decoder {
  constructor({ role, maxMessageSize } = {}) {
    checkRole(role);
    this.role = role;
    this.maxMessageSize = resolveMaxMessageSize(maxMessageSize);
    this._expected = role === 'parent' ? PROTOCOL.WORKER_HANDSHAKE : PROTOCOL.PARENT_HANDSHAKE;
    this._state = S_HANDSHAKE;
    this._error = null;
    this._header = Buffer.alloc(PROTOCOL.HEADER_SIZE);
    this._headerFilled = 0;
    this._payload = null; // buffer of a payload being assembled
    this._payloadFilled = 0; // bytes of it received so far
    this._payloadLength = 0; // its announced length (the buffer grows towards it)
  }

  /** True when the decoder sits between two frames (after the handshake). */
  get atBoundary() {
    return this._state === S_HEADER && this._headerFilled === 0;
  }

  /** True once the handshake byte has been accepted. */
  get handshaken() {
    return this._state !== S_HANDSHAKE;
  }

  /**
   * The protocol error this decoder has hit, or null. Once set, every call
   * throws it. Check it after feed(): when a chunk completes some events and
   * then breaks the protocol, feed() returns those events and the error is
   * only recorded here (and thrown by the next call).
   */
  get error() {
    return this._error;
  }

  /**
   * Decode a chunk and return the events it completes. Throws a
   * ProtocolError as soon as the bytes prove one, unless events precede it
   * in the same chunk: then they are returned and the error is deferred to
   * the next call (see `error`). Bytes after the error are never decoded.
   */
  feed(chunk) {
    if (this._error) throw this._error;
    if (this._state === S_ENDED) throw new Error('Decoder.feed() called after end()');
    if (!(chunk instanceof Uint8Array)) {
      throw new TypeError('Decoder.feed() expects a Buffer or Uint8Array');
    }
    const events = [];
    try {
      this._feed(chunk, events);
    } catch (err) {
      if (!(err instanceof ProtocolError)) throw err;
      this._error = err;
      this._payload = null;
      if (events.length === 0) throw err;
    }
    return events;
  }

  _feed(chunk, events) {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this._state) {
        case S_HANDSHAKE: {
          const b = chunk[i++];
          if (b !== this._expected) throw new HandshakeError(this._expected, b);
          this._state = S_HEADER;
          events.push({ type: 'handshake' });
          break;
        }
        case S_HEADER: {
          let length;
          if (this._headerFilled === 0 && n - i >= 4) {
            // Fast path: whole header inside this chunk.
            length = ((chunk[i] << 24) >>> 0) + (chunk[i + 1] << 16) + (chunk[i + 2] << 8) + chunk[i + 3];
            i += 4;
          } else {
            const take = Math.min(4 - this._headerFilled, n - i);
            for (let k = 0; k < take; k++) this._header[this._headerFilled++] = chunk[i++];
            if (this._headerFilled < 4) break;
            this._headerFilled = 0;
            length = this._header.readUInt32BE(0);
          }
          if (length > this.maxMessageSize) {
            throw new MessageTooLargeError(length, this.maxMessageSize);
          }
          if (length === 0) {
            events.push({ type: 'message', payload: EMPTY.subarray(0, 0) });
          } else if (n - i >= length) {
            // Whole payload inside this chunk: copy it out in one go.
            const payload = Buffer.allocUnsafe(length);
            copyInto(payload, 0, chunk, i, length);
            i += length;
            events.push({ type: 'message', payload });
          } else {
            this._payload = Buffer.allocUnsafe(Math.min(length, Math.max(PREALLOCATE, 2 * (n - i))));
            this._payloadFilled = 0;
            this._payloadLength = length;
            this._state = S_PAYLOAD;
          }
          break;
        }
        case S_PAYLOAD: {
          const take = Math.min(this._payloadLength - this._payloadFilled, n - i);
          if (this._payloadFilled + take > this._payload.length) this._grow(this._payloadFilled + take);
          copyInto(this._payload, this._payloadFilled, chunk, i, take);
          this._payloadFilled += take;
          i += take;
          if (this._payloadFilled === this._payloadLength) {
            // The buffer never grows past the announced length, so it is exactly full.
            const payload = this._payload;
            this._payload = null;
            this._payloadFilled = 0;
            this._payloadLength = 0;
            this._state = S_HEADER;
            events.push({ type: 'message', payload });
          }
          break;
        }
        /* c8 ignore next 2 */
        default:
          throw new Error('decoder in an impossible state');
      }
    }
  }

  /** Replace the payload buffer by one of at least `needed` bytes: double it, up to the announced length. */
  _grow(needed) {
    const size = Math.min(this._payloadLength, Math.max(needed, 2 * this._payload.length));
    const bigger = Buffer.allocUnsafe(size);
    this._payload.copy(bigger, 0, 0, this._payloadFilled);
    this._payload = bigger;
  }

  end() {
    if (this._error) throw this._error;
    if (this._state === S_ENDED) return [{ type: 'end' }];
    let err = null;
    if (this._state === S_HANDSHAKE) {
      err = new TruncatedStreamError('handshake', 1);
    } else if (this._state === S_PAYLOAD) {
      err = new TruncatedStreamError('payload', this._payloadLength - this._payloadFilled);
    } else if (this._headerFilled > 0) {
      err = new TruncatedStreamError('header', 4 - this._headerFilled);
    }
    if (err) {
      this._error = err;
      this._payload = null;
      throw err;
    }
    this._state = S_ENDED;
    return [{ type: 'end' }];
  }
}

function copyInto(target, targetStart, source, sourceStart, length) {
  if (Buffer.isBuffer(source)) {
    source.copy(target, targetStart, sourceStart, sourceStart + length);
  } else {
    target.set(source.subarray(sourceStart, sourceStart + length), targetStart);
  }
}

module.exports = {
  PROTOCOL,
  EFFECTIVE_MAX_MESSAGE_SIZE,
  PREALLOCATE,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  Decoder,
  encodeHeader,
  handshakeByte,
  resolveMaxMessageSize,
};
