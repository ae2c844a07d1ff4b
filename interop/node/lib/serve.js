'use strict';

// The worker's side of request/response: answer every request with the
// handler's result, one reply per request, in order. Replies carry a status
// byte so that a handler's error reaches the parent (spec/requests.md,
// section 2): 0x00 followed by the result, or 0x01 followed by UTF-8 JSON
// {"type", "message", "traceback"}.

const REPLY_OK = 0x00;
const REPLY_ERROR = 0x01;

/** A handler in the worker threw; `traceback` is the worker's stack text. */
class RemoteError extends Error {
  constructor(type, message, traceback) {
    super(`${type}: ${message}`);
    this.name = 'RemoteError';
    this.code = 'ERR_REMOTE';
    this.type = type;
    this.remoteMessage = message;
    this.traceback = traceback;
  }
}

/** A reply that does not follow the status-byte convention. */
class ReplyFormatError extends Error {
  constructor(message) {
    super(message);
    this.name = 'ReplyFormatError';
    this.code = 'ERR_BAD_REPLY';
  }
}

function encodeResult(result) {
  let body;
  if (result === undefined || result === null) body = Buffer.alloc(0);
  else if (typeof result === 'string') body = Buffer.from(result, 'utf8');
  else if (result instanceof Uint8Array) body = result;
  else if (ArrayBuffer.isView(result)) body = new Uint8Array(result.buffer, result.byteOffset, result.byteLength);
  else if (result instanceof ArrayBuffer) body = new Uint8Array(result);
  else throw new TypeError(`a handler must return bytes (Buffer, Uint8Array), a string or nothing; got ${typeof result}`);
  const reply = Buffer.allocUnsafe(body.length + 1);
  reply[0] = REPLY_OK;
  reply.set(body, 1);
  return reply;
}

function encodeError(err) {
  let type = 'Error';
  let message = String(err);
  let traceback = '';
  if (err instanceof Error) {
    type = err.name || (err.constructor && err.constructor.name) || 'Error';
    message = err.message;
    traceback = typeof err.stack === 'string' ? err.stack : '';
  }
  const json = Buffer.from(JSON.stringify({ type, message, traceback }), 'utf8');
  const reply = Buffer.allocUnsafe(json.length + 1);
  reply[0] = REPLY_ERROR;
  json.copy(reply, 1);
  return reply;
}

/**
 * Undo the status byte of a reply: return the result, or throw the
 * RemoteError it reports (ReplyFormatError for a reply that follows no
 * convention).
 */
function decodeReply(reply) {
  if (reply.length === 0) throw new ReplyFormatError('empty reply: a served reply starts with a status byte');
  if (reply[0] === REPLY_OK) return reply.subarray(1);
  if (reply[0] !== REPLY_ERROR) {
    throw new ReplyFormatError(`reply starts with 0x${reply[0].toString(16).padStart(2, '0')}, not a status byte (0x00 or 0x01)`);
  }
  let fields;
  try {
    fields = JSON.parse(reply.subarray(1).toString('utf8'));
  } catch (err) {
    throw new ReplyFormatError(`error reply is not JSON: ${err.message}`);
  }
  if (!fields || typeof fields !== 'object' || Array.isArray(fields)) {
    throw new ReplyFormatError('error reply is not a JSON object');
  }
  const text = (value) => (typeof value === 'string' ? value : '');
  throw new RemoteError(text(fields.type) || 'Error', text(fields.message), text(fields.traceback));
}

/**
 * Connect to the parent and answer each request with `handler(request)`
 * (sync or async), in order, until the parent ends its stream; then finish.
 * A handler's exception is sent back as an error reply and serving goes on.
 * Resolves once the last reply has been handed to the socket and our side
 * is finished. `options` are connect()'s.
 */
async function serve(handler, options) {
  if (typeof handler !== 'function') throw new TypeError('serve() expects a handler function');
  const { connect } = require('../index.js');
  const conn = await connect(options);
  for await (const message of conn) {
    let reply;
    try {
      reply = encodeResult(await handler(message));
    } catch (err) {
      reply = encodeError(err);
    }
    // Replies are written in order; awaiting each one holds a fast handler
    // back when the parent does not read.
    await conn.send(reply);
  }
  await conn.finish();
}

module.exports = {
  serve,
  decodeReply,
  encodeResult,
  encodeError,
  RemoteError,
  ReplyFormatError,
  REPLY_OK,
  REPLY_ERROR,
  /** What the package exports. */
  api: { serve, decodeReply, RemoteError, ReplyFormatError },
};
