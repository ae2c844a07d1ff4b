'use strict';

// Runs every language-neutral vector in spec/vectors/ (format: spec/vectors.md) against
// codec.js: decode cases through Decoder, encode cases through handshakeByte/encodeHeader.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const codec = require('../codec.js');

const VECTORS = path.resolve(__dirname, '..', '..', '..', 'spec', 'vectors');
const FILES = ['decode-worker.json', 'decode-parent.json', 'encode.json'];

/** The bytes a JSON byte string stands for: hex, or a list of hex and repeat segments. */
function expand(value) {
  if (typeof value === 'string') return Buffer.from(value, 'hex');
  assert.ok(Array.isArray(value), `not a byte string: ${JSON.stringify(value)}`);
  return Buffer.concat(
    value.map((seg) => {
      if (typeof seg === 'string') return Buffer.from(seg, 'hex');
      const unit = Buffer.from(seg.repeat, 'hex');
      return Buffer.alloc(unit.length * seg.count, unit);
    }),
  );
}

/** A decoding error as its language-neutral class and attributes. */
function errorJson(err) {
  if (err instanceof codec.HandshakeError) {
    return { class: 'bad_handshake', expected: err.expected, got: err.got };
  }
  if (err instanceof codec.MessageTooLargeError) {
    return { class: 'message_too_large', length: err.length, limit: err.limit };
  }
  if (err instanceof codec.TruncatedStreamError) {
    return { class: `truncated_${err.stage}`, stage: err.stage, missing: err.missing };
  }
  throw err; // not a protocol error: a bug in the decoder or in this test
}

/** Events as comparable values: payloads as hex strings. */
function eventJson(event) {
  if (event.type === 'message') return { type: 'message', payload: Buffer.from(event.payload).toString('hex') };
  return { type: event.type };
}

function expectedEvents(c) {
  return c.events.map((e) => (e.type === 'message' ? { type: 'message', payload: expand(e.payload).toString('hex') } : { type: e.type }));
}

/** Run one decode case as spec/vectors.md says. */
function runDecode(c) {
  const options = { role: c.role };
  if (c.max_message_size !== null) options.maxMessageSize = c.max_message_size;
  const decoder = new codec.Decoder(options);
  const events = [];
  const deferredAt = c.error && c.error.raised_at !== 'eof' ? c.error.raised_at : -1;
  const chunks = c.chunks.map(expand);
  for (let index = 0; index < chunks.length; index++) {
    try {
      for (const e of decoder.feed(chunks[index])) events.push(eventJson(e));
      // A decoder may return the events of the chunk first; the error must come next.
      if (index === deferredAt) for (const e of decoder.feed(Buffer.alloc(0))) events.push(eventJson(e));
    } catch (err) {
      return { events, error: { ...errorJson(err), raised_at: index } };
    }
  }
  if (c.eof) {
    try {
      for (const e of decoder.end()) events.push(eventJson(e));
    } catch (err) {
      return { events, error: { ...errorJson(err), raised_at: 'eof' } };
    }
  }
  return { events, error: null };
}

function loadCases() {
  const cases = [];
  for (const name of FILES) {
    const doc = JSON.parse(fs.readFileSync(path.join(VECTORS, name), 'utf8'));
    assert.equal(doc.schema, 1, `${name}: unknown schema ${doc.schema}`);
    cases.push(...doc.cases);
  }
  return cases;
}

const cases = loadCases();

test('the vector files are there', () => {
  assert.ok(cases.length >= 25, `only ${cases.length} cases`);
});

for (const c of cases) {
  if (c.id.startsWith('decode/')) {
    test(c.id, () => {
      const got = runDecode(c);
      assert.deepEqual(got.events, expectedEvents(c), `${c.description}: events`);
      assert.deepEqual(got.error, c.error, `${c.description}: error`);
    });
  } else if (c.kind === 'stream') {
    test(c.id, () => {
      const parts = [Buffer.from([codec.handshakeByte(c.role)])];
      for (const payload of c.payloads.map(expand)) {
        parts.push(codec.encodeHeader(payload.length), payload);
      }
      assert.equal(Buffer.concat(parts).toString('hex'), expand(c.bytes).toString('hex'), c.description);
    });
  } else if (c.kind === 'header') {
    test(c.id, () => {
      if (c.error === null) {
        assert.equal(codec.encodeHeader(c.length).toString('hex'), c.header, c.description);
        return;
      }
      assert.throws(
        () => codec.encodeHeader(c.length),
        (err) => {
          assert.ok(err instanceof codec.ProtocolError, `${c.description}: threw ${err}`);
          assert.deepEqual({ class: 'payload_too_large', length: err.length, limit: err.limit }, c.error);
          return true;
        },
      );
    });
  } else {
    test(c.id, () => assert.fail(`unknown case kind ${c.kind}`));
  }
}
