'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { constants: bufferConstants } = require('node:buffer');

const {
  Decoder,
  encodeHeader,
  handshakeByte,
  PROTOCOL,
  ProtocolError,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  EFFECTIVE_MAX_MESSAGE_SIZE,
  PREALLOCATE,
} = require('../codec.js');

function frame(payload) {
  return Buffer.concat([encodeHeader(payload.length), payload]);
}

function patterned(length, seed) {
  const buf = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) buf[i] = (i * 31 + seed * 7) & 0xff;
  return buf;
}

/** Deterministic PRNG so that failures are reproducible. */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function decodeChunks(role, chunks, options = {}) {
  const decoder = new Decoder({ role, ...options });
  const events = [];
  for (const chunk of chunks) events.push(...decoder.feed(chunk));
  events.push(...decoder.end());
  return events;
}

function simplify(events) {
  return events.map((e) => (e.type === 'message' ? `message:${e.payload.toString('hex')}` : e.type));
}

function streamFor(role, payloads) {
  const hello = role === 'parent' ? PROTOCOL.WORKER_HANDSHAKE : PROTOCOL.PARENT_HANDSHAKE;
  return Buffer.concat([Buffer.from([hello]), ...payloads.map(frame)]);
}

const SMALL_PAYLOADS = [
  Buffer.alloc(0),
  Buffer.from([0x42]),
  patterned(5, 1),
  Buffer.alloc(0),
  Buffer.alloc(0),
  patterned(300, 2),
  patterned(2, 3),
  Buffer.alloc(0),
];

function expectedEvents(payloads) {
  return ['handshake', ...payloads.map((p) => `message:${p.toString('hex')}`), 'end'];
}

test('codec: whole stream in one chunk, for both roles', () => {
  for (const role of ['parent', 'worker']) {
    const stream = streamFor(role, SMALL_PAYLOADS);
    assert.deepEqual(simplify(decodeChunks(role, [stream])), expectedEvents(SMALL_PAYLOADS));
  }
});

test('codec: byte-at-a-time gives the same events', () => {
  const stream = streamFor('parent', SMALL_PAYLOADS);
  const chunks = [];
  for (let i = 0; i < stream.length; i++) chunks.push(stream.subarray(i, i + 1));
  assert.deepEqual(simplify(decodeChunks('parent', chunks)), expectedEvents(SMALL_PAYLOADS));
});

test('codec: a split at every offset gives the same events', () => {
  const stream = streamFor('worker', SMALL_PAYLOADS);
  const expected = expectedEvents(SMALL_PAYLOADS);
  for (let i = 0; i <= stream.length; i++) {
    const events = decodeChunks('worker', [stream.subarray(0, i), stream.subarray(i)]);
    assert.deepEqual(simplify(events), expected, `split at ${i}`);
  }
});

test('codec: every pair of split points gives the same events', () => {
  // Covers a header split in two places and headers straddling payload ends.
  const payloads = [Buffer.alloc(0), patterned(3, 4), Buffer.alloc(0), patterned(9, 5)];
  const stream = streamFor('parent', payloads);
  const expected = expectedEvents(payloads);
  for (let i = 0; i <= stream.length; i++) {
    for (let j = i; j <= stream.length; j++) {
      const chunks = [stream.subarray(0, i), stream.subarray(i, j), stream.subarray(j)];
      assert.deepEqual(simplify(decodeChunks('parent', chunks)), expected, `split at ${i} and ${j}`);
    }
  }
});

test('codec: random chunkings of a stream with large payloads', () => {
  const payloads = [patterned(70000, 6), Buffer.alloc(0), patterned(1, 7), patterned(200000, 8), Buffer.alloc(0)];
  const stream = streamFor('parent', payloads);
  const expected = expectedEvents(payloads);
  const random = prng(12345);
  for (let round = 0; round < 40; round++) {
    const chunks = [];
    let offset = 0;
    const maxChunk = [1, 7, 100, 5000, 65536, 300000][round % 6];
    while (offset < stream.length) {
      const size = 1 + Math.floor(random() * maxChunk);
      chunks.push(stream.subarray(offset, offset + size));
      offset += size;
    }
    assert.deepEqual(simplify(decodeChunks('parent', chunks)), expected, `round ${round}`);
  }
});

test('codec: accepts plain Uint8Array chunks', () => {
  const stream = streamFor('worker', SMALL_PAYLOADS);
  const chunks = [new Uint8Array(stream.subarray(0, 7)), new Uint8Array(stream.subarray(7))];
  assert.deepEqual(simplify(decodeChunks('worker', chunks)), expectedEvents(SMALL_PAYLOADS));
});

test('codec: payloads are copies, not views of the input', () => {
  const decoder = new Decoder({ role: 'parent' });
  const input = Buffer.concat([Buffer.from([1]), frame(Buffer.from('abc'))]);
  const [, message] = decoder.feed(input);
  input.fill(0);
  assert.equal(message.payload.toString(), 'abc');
});

test('codec: a zero-length frame is delivered as soon as its header is complete', () => {
  const decoder = new Decoder({ role: 'parent' });
  assert.deepEqual(decoder.feed(Buffer.from([0x01])), [{ type: 'handshake' }]);
  assert.deepEqual(decoder.feed(Buffer.from([0, 0, 0])), []);
  const events = decoder.feed(Buffer.from([0]));
  assert.equal(events.length, 1);
  assert.equal(events[0].type, 'message');
  assert.ok(Buffer.isBuffer(events[0].payload));
  assert.equal(events[0].payload.length, 0);
});

test('codec: a large payload is assembled into one buffer of the announced length', () => {
  const payload = patterned(1024 * 1024 + 3, 9);
  const stream = streamFor('worker', [payload]);
  const decoder = new Decoder({ role: 'worker' });
  const messages = [];
  for (let offset = 0; offset < stream.length; offset += 65536) {
    for (const event of decoder.feed(stream.subarray(offset, offset + 65536))) {
      if (event.type === 'message') messages.push(event.payload);
    }
  }
  assert.equal(messages.length, 1);
  assert.equal(messages[0].length, payload.length);
  assert.ok(messages[0].equals(payload));
});

test('codec: events decoded before an error in the same chunk are returned, the error follows', () => {
  const decoder = new Decoder({ role: 'parent', maxMessageSize: 8 });
  const chunk = Buffer.concat([Buffer.from([0x01]), frame(Buffer.from('ok')), encodeHeader(9), Buffer.from('tail')]);
  const events = decoder.feed(chunk);
  assert.deepEqual(simplify(events), ['handshake', `message:${Buffer.from('ok').toString('hex')}`]);
  const err = decoder.error;
  assert.ok(err instanceof MessageTooLargeError && err.length === 9 && err.limit === 8);
  assert.throws(() => decoder.feed(Buffer.alloc(0)), (e) => e === err);
  assert.throws(() => decoder.end(), (e) => e === err);
});

test('codec: bad handshake byte', () => {
  const parentSide = new Decoder({ role: 'parent' });
  assert.throws(
    () => parentSide.feed(Buffer.from([0x00, 0x01])),
    (err) =>
      err instanceof HandshakeError &&
      err instanceof ProtocolError &&
      err.code === 'ERR_BAD_HANDSHAKE' &&
      err.expected === 0x01 &&
      err.got === 0x00,
  );
  const workerSide = new Decoder({ role: 'worker' });
  assert.throws(
    () => workerSide.feed(Buffer.from([0x07])),
    (err) => err instanceof HandshakeError && err.expected === 0x00 && err.got === 0x07,
  );
});

test('codec: end() before the handshake byte is truncation', () => {
  const decoder = new Decoder({ role: 'parent' });
  assert.throws(
    () => decoder.end(),
    (err) => err instanceof TruncatedStreamError && err.code === 'ERR_TRUNCATED' && err.stage === 'handshake' && err.missing === 1,
  );
});

test('codec: end() at a frame boundary after the handshake is a clean end', () => {
  const decoder = new Decoder({ role: 'worker' });
  decoder.feed(Buffer.from([0x00]));
  assert.equal(decoder.atBoundary, true);
  assert.deepEqual(decoder.end(), [{ type: 'end' }]);
});

test('codec: end() inside a header is truncation', () => {
  const decoder = new Decoder({ role: 'parent' });
  decoder.feed(Buffer.from([0x01, 0x00, 0x00]));
  assert.throws(
    () => decoder.end(),
    (err) => err instanceof TruncatedStreamError && err.stage === 'header' && err.missing === 2,
  );
});

test('codec: end() inside a payload is truncation', () => {
  const decoder = new Decoder({ role: 'parent' });
  decoder.feed(Buffer.concat([Buffer.from([0x01]), encodeHeader(10), Buffer.from('abc')]));
  assert.throws(
    () => decoder.end(),
    (err) => err instanceof TruncatedStreamError && err.stage === 'payload' && err.missing === 7,
  );
});

test('codec: a length over maxMessageSize fails at the header, before any payload', () => {
  const decoder = new Decoder({ role: 'worker', maxMessageSize: 10 });
  decoder.feed(Buffer.from([0x00]));
  assert.equal(decoder.feed(frame(patterned(10, 1))).length, 1, 'exactly the limit is fine');
  // Only the header of the oversized frame is ever fed.
  assert.throws(
    () => decoder.feed(encodeHeader(11)),
    (err) =>
      err instanceof MessageTooLargeError &&
      err.code === 'ERR_MESSAGE_TOO_LARGE' &&
      err.length === 11 &&
      err.limit === 10,
  );
});

test('codec: a huge announced length is rejected without allocating it', () => {
  const decoder = new Decoder({ role: 'parent', maxMessageSize: 1024 });
  decoder.feed(Buffer.from([0x01]));
  assert.throws(() => decoder.feed(Buffer.from([0xff, 0xff, 0xff, 0xff])), (err) => err.length === 0xffffffff && err.limit === 1024);
});

test('codec: a 4 GiB header followed by 1 KiB does not allocate in proportion to the announced length', () => {
  const MiB = 1024 * 1024;
  const decoder = new Decoder({ role: 'worker' });
  assert.ok(decoder.maxMessageSize >= 0xffffffff, 'no limit below the wire maximum');
  decoder.feed(Buffer.from([0x00]));
  const before = process.memoryUsage();
  assert.deepEqual(decoder.feed(Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff]), patterned(1024, 3)])), []);
  const after = process.memoryUsage();
  // The decoder still holds its buffer here, so the measurement includes it.
  const arrayBuffers = (after.arrayBuffers - before.arrayBuffers) / MiB;
  const rss = (after.rss - before.rss) / MiB;
  assert.ok(arrayBuffers <= PREALLOCATE / MiB + 8, `array buffers grew by ${arrayBuffers.toFixed(1)} MiB`);
  assert.ok(rss < 256, `resident memory grew by ${rss.toFixed(1)} MiB`);
  assert.throws(
    () => decoder.end(),
    (err) => err instanceof TruncatedStreamError && err.stage === 'payload' && err.missing === 0xffffffff - 1024,
  );
});

test('codec: payloads larger than the pre-allocation arrive intact in random chunks', () => {
  const random = prng(777);
  const sizes = [PREALLOCATE - 1, PREALLOCATE, PREALLOCATE + 1, 40 * 1024 * 1024];
  const payloads = sizes.map((size, i) => patterned(size, i + 20));
  const stream = streamFor('parent', [payloads[0], Buffer.alloc(0), payloads[1], payloads[2], payloads[3]]);
  const decoder = new Decoder({ role: 'parent' });
  const messages = [];
  let offset = 0;
  while (offset < stream.length) {
    // Mostly socket-sized reads, sometimes tiny ones, sometimes several MiB at once.
    const r = random();
    const size = r < 0.1 ? 1 + Math.floor(random() * 7) : r < 0.9 ? 1 + Math.floor(random() * 256 * 1024) : Math.floor(random() * 6 * 1024 * 1024) + 1;
    for (const event of decoder.feed(stream.subarray(offset, offset + size))) {
      if (event.type === 'message') messages.push(event.payload);
    }
    offset += size;
  }
  assert.deepEqual(decoder.end(), [{ type: 'end' }]);
  assert.deepEqual(
    messages.map((m) => m.length),
    [sizes[0], 0, sizes[1], sizes[2], sizes[3]],
  );
  for (const [index, expected] of [[0, payloads[0]], [2, payloads[1]], [3, payloads[2]], [4, payloads[3]]]) {
    assert.ok(messages[index].equals(expected), `content of message ${index}`);
  }
});

test('codec: a 64 MiB payload in 64 KiB reads is assembled quickly', () => {
  const length = 64 * 1024 * 1024;
  const payload = Buffer.alloc(length, 0x5a);
  payload.writeUInt32BE(0xdeadbeef, 0);
  payload.writeUInt32BE(0xfeedface, length - 4);
  const decoder = new Decoder({ role: 'worker' });
  decoder.feed(Buffer.concat([Buffer.from([0x00]), encodeHeader(length)]));
  const started = process.hrtime.bigint();
  let message = null;
  for (let offset = 0; offset < length; offset += 65536) {
    const events = decoder.feed(payload.subarray(offset, offset + 65536));
    if (events.length > 0) message = events[0].payload;
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  assert.ok(message && message.equals(payload), 'the payload arrived intact');
  // Geometric growth copies under 2x the payload in total; a generous bound
  // still catches growth by a constant step (quadratic copying).
  assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
});

test('codec: errors are sticky', () => {
  const decoder = new Decoder({ role: 'parent', maxMessageSize: 4 });
  decoder.feed(Buffer.from([0x01]));
  let first;
  try {
    decoder.feed(encodeHeader(5));
  } catch (err) {
    first = err;
  }
  assert.ok(first instanceof MessageTooLargeError);
  assert.equal(decoder.error, first);
  assert.throws(() => decoder.feed(Buffer.alloc(0)), (err) => err === first);
  assert.throws(() => decoder.feed(frame(Buffer.from('ok'))), (err) => err === first);
  assert.throws(() => decoder.end(), (err) => err === first);

  const truncated = new Decoder({ role: 'worker' });
  truncated.feed(Buffer.from([0x00, 0x00]));
  let endError;
  try {
    truncated.end();
  } catch (err) {
    endError = err;
  }
  assert.ok(endError instanceof TruncatedStreamError);
  assert.throws(() => truncated.end(), (err) => err === endError);
  assert.throws(() => truncated.feed(Buffer.from([0, 0, 0])), (err) => err === endError);

  const badHello = new Decoder({ role: 'worker' });
  assert.throws(() => badHello.feed(Buffer.from([0x05])), HandshakeError);
  assert.throws(() => badHello.feed(Buffer.from([0x00])), HandshakeError);
});

test('codec: default limit is the wire maximum capped by the Buffer size limit', () => {
  const decoder = new Decoder({ role: 'parent' });
  assert.equal(decoder.maxMessageSize, Math.min(2 ** 32 - 1, bufferConstants.MAX_LENGTH));
  assert.equal(EFFECTIVE_MAX_MESSAGE_SIZE, decoder.maxMessageSize);
  assert.equal(new Decoder({ role: 'parent', maxMessageSize: Infinity }).maxMessageSize, decoder.maxMessageSize);
  assert.equal(new Decoder({ role: 'parent', maxMessageSize: 0 }).maxMessageSize, 0);
});

test('codec: constructor validation', () => {
  assert.throws(() => new Decoder({ role: 'client' }), TypeError);
  assert.throws(() => new Decoder({}), TypeError);
  assert.throws(() => new Decoder({ role: 'parent', maxMessageSize: -1 }), RangeError);
  assert.throws(() => new Decoder({ role: 'parent', maxMessageSize: 1.5 }), RangeError);
  assert.throws(() => new Decoder({ role: 'parent' }).feed('abc'), TypeError);
});

test('codec: encodeHeader and handshakeByte', () => {
  assert.deepEqual([...encodeHeader(0)], [0, 0, 0, 0]);
  assert.deepEqual([...encodeHeader(1)], [0, 0, 0, 1]);
  assert.deepEqual([...encodeHeader(0x01020304)], [1, 2, 3, 4]);
  assert.deepEqual([...encodeHeader(2 ** 32 - 1)], [255, 255, 255, 255]);
  assert.throws(() => encodeHeader(2 ** 32), MessageTooLargeError);
  assert.throws(() => encodeHeader(-1), RangeError);
  assert.throws(() => encodeHeader(1.5), RangeError);
  assert.equal(handshakeByte('parent'), 0x00);
  assert.equal(handshakeByte('worker'), 0x01);
  assert.throws(() => handshakeByte('other'), TypeError);
  assert.equal(PROTOCOL.HEADER_SIZE, 4);
  assert.equal(PROTOCOL.MAX_MESSAGE_SIZE, 2 ** 32 - 1);
});
