'use strict';

// worker.request() and serve(), with real worker processes.

const test = require('node:test');
const assert = require('node:assert/strict');

const { NoReplyError, RequestConflictError, RequestTimeoutError, RemoteError, decodeReply } = require('../index.js');
const { startFixture: start, killRunning, within } = require('./helpers.js');

test.afterEach(killRunning);

const text = (s) => Buffer.from(s);
const served = async (promise) => String(decodeReply(await promise));

test('pipelined requests to an echo worker get their own replies, in order', async () => {
  const worker = await start('echo.fixture');
  const requests = [];
  for (let i = 0; i < 500; i++) requests.push(worker.request(text(`request ${i}`)));
  const replies = await within(30000, '500 replies', Promise.all(requests));
  assert.deepEqual(
    replies.map(String),
    requests.map((_, i) => `request ${i}`),
  );
  // Sequential use after a pipelined burst keeps the pairing.
  assert.equal(String(await worker.request(text('again'))), 'again');
  assert.equal((await worker.close()).exitCode, 0);
});

test('request() and the other readers refuse each other while replies are due', async () => {
  const worker = await start('echo.fixture');
  worker.onmessage = () => {};
  await assert.rejects(worker.request(text('x')), (err) => err instanceof RequestConflictError && err.code === 'ERR_REQUEST_CONFLICT');
  worker.onmessage = null;
  const reply = worker.request(text('y'));
  assert.throws(() => {
    worker.onmessage = () => {};
  }, RequestConflictError);
  const iterator = worker[Symbol.asyncIterator]();
  await assert.rejects(iterator.next(), RequestConflictError);
  assert.equal(String(await reply), 'y');
  // Once every reply is in, the messages belong to whoever reads them.
  const got = new Promise((resolve) => {
    worker.onmessage = resolve;
  });
  await worker.send(text('z'));
  assert.equal(String(await within(10000, 'the message', got)), 'z');
  worker.onmessage = null;
  // An iterator waiting for a message makes request() refuse, until it has one.
  const waiting = iterator.next();
  await assert.rejects(worker.request(text('v')), RequestConflictError);
  await worker.send(text('w'));
  assert.equal(String((await within(10000, 'the message', waiting)).value), 'w');
  assert.equal(String(await worker.request(text('u'))), 'u');
  // for await works as before, and ends at the worker's end of stream.
  const rest = [];
  await worker.send(text('t'));
  const closing = worker.close();
  for await (const message of worker) rest.push(String(message));
  assert.deepEqual(rest, ['t']);
  await closing;
});

test('a timed-out request rejects; its late reply is dropped and the next request gets its own', async () => {
  const worker = await start('serve.fixture');
  const slow = worker.request(text('sleep:300:late'), { timeout: 50 });
  const next = worker.request(text('echo:next'));
  await assert.rejects(
    slow,
    (err) => err instanceof RequestTimeoutError && err.code === 'ERR_REQUEST_TIMEOUT' && err.timeout === 50 && err.pid === worker.pid,
  );
  assert.equal(await served(next), 'next');
  await assert.rejects(worker.request(text('x'), { timeout: -1 }), RangeError);
  await worker.close();
});

test('a worker that exits before replying rejects every pending request with how it died', async () => {
  const worker = await start('serve.fixture');
  const first = worker.request(text('exit:7'));
  const second = worker.request(text('echo:never'));
  for (const pending of [first, second]) {
    await assert.rejects(
      within(10000, 'the rejection', pending),
      (err) =>
        err instanceof NoReplyError && err.code === 'ERR_NO_REPLY' && err.pid === worker.pid && err.exitCode === 7 && /exited with code 7/.test(err.message),
    );
  }
  // Later requests fail at once the same way.
  await assert.rejects(worker.request(text('echo:late')), { code: 'ERR_NO_REPLY', exitCode: 7 });
});

test('a worker killed by a signal: the error names the signal', async () => {
  const worker = await start('serve.fixture');
  const pending = worker.request(text('hang'));
  worker.kill('SIGKILL');
  await assert.rejects(within(10000, 'the rejection', pending), { code: 'ERR_NO_REPLY', signal: 'SIGKILL', exitCode: null });
});

test('serve(): a handler error becomes a RemoteError with the worker\'s stack, and serving goes on', async () => {
  const worker = await start('serve.fixture');
  const failing = worker.request(text('throw:no such thing'));
  const after = worker.request(text('echo:still here'));
  await assert.rejects(served(failing), (err) => {
    assert.ok(err instanceof RemoteError);
    assert.equal(err.code, 'ERR_REMOTE');
    assert.equal(err.type, 'TypeError');
    assert.equal(err.remoteMessage, 'no such thing');
    assert.match(err.message, /^TypeError: no such thing$/);
    assert.match(err.traceback, /serve\.fixture/);
    return true;
  });
  assert.equal(await served(after), 'still here');
  // The parent's clean end finishes serve(): the worker exits 0.
  assert.deepEqual(await worker.close(), { exitCode: 0, signal: null });
  await worker.lifetime;
});

test('request() rejects data that is not bytes', async () => {
  const worker = await start('echo.fixture');
  await assert.rejects(worker.request('text'), TypeError);
  await worker.close();
});

test('decodeReply: status byte convention', () => {
  assert.equal(String(decodeReply(Buffer.from('\x00ok'))), 'ok');
  assert.throws(() => decodeReply(Buffer.alloc(0)), { code: 'ERR_BAD_REPLY' });
  assert.throws(() => decodeReply(Buffer.from('\x07')), { code: 'ERR_BAD_REPLY' });
  assert.throws(() => decodeReply(Buffer.from('\x01{nope')), { code: 'ERR_BAD_REPLY' });
  assert.throws(() => decodeReply(Buffer.from('\x01[1]')), { code: 'ERR_BAD_REPLY' });
  // Missing or non-string fields read as empty strings, the type as "Error".
  assert.throws(() => decodeReply(Buffer.from('\x01{"message": 3}')), { type: 'Error', remoteMessage: '', traceback: '' });
  const err = Buffer.concat([Buffer.from([1]), Buffer.from(JSON.stringify({ type: 'ValueError', message: 'm', traceback: 'T' }))]);
  assert.throws(() => decodeReply(err), { name: 'RemoteError', type: 'ValueError', remoteMessage: 'm', traceback: 'T' });
});
