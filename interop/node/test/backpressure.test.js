'use strict';

// Read-side back-pressure: a consumer slower than its peer keeps its memory
// bounded, because reading stops while too much waits for it, and nothing is
// lost or reordered on the way. Real processes throughout.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');

const MiB = 1024 * 1024;
// The marks in lib/channel.js: reading pauses above 4 MiB of queued messages.
const HIGH_WATER = 4 * MiB;
// How much a consumer's memory may grow while a flood goes by. The queue
// itself stays near 4 MiB; the rest is what the garbage collector has not
// reclaimed yet.
const MEMORY_BOUND = 64 * MiB;
// RSS also holds the heap the garbage collector has not given back: Node.js 24
// keeps more of it (seen: +68 MiB for a 128 MiB flood). An unbounded queue
// still fails the arrayBuffers bound above.
const RSS_BOUND = 96 * MiB;
const FLOOD = 256 * MiB;

const { fixture, startFixture, killRunning, within } = require('./helpers.js');

test.afterEach(killRunning);

/** Resolves with the arguments of the next `event` from `emitter`. */
function next(emitter, event) {
  return new Promise((resolve) => emitter.once(event, (...args) => resolve(args)));
}

/** Run a Node script to completion; resolve with its exit status and output. */
function runNode(args, timeout) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not finish within ${timeout} ms\nstderr: ${stderr}`));
    }, timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/**
 * Block this whole process (no I/O is handled) until process `pid` has exited
 * but is not reaped yet: its main thread is a zombie and its other threads,
 * the last of which releases its descriptors, are gone.
 */
function blockUntilZombie(pid, ms) {
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const deadline = performance.now() + ms;
  for (;;) {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const zombie = stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
    if (zombie && fs.readdirSync(`/proc/${pid}/task`).join() === String(pid)) return;
    if (performance.now() > deadline) throw new Error(`process ${pid} did not exit within ${ms} ms`);
    Atomics.wait(pause, 0, 0, 1);
  }
}

const mib = (bytes) => `${(bytes / MiB).toFixed(1)} MiB`;

function checkMemory(t, who, report, { arrayBuffers = MEMORY_BOUND } = {}) {
  t.diagnostic(`${who}: RSS +${mib(report.rssGrowth)}, arrayBuffers +${mib(report.arrayBuffersGrowth)}`);
  assert.ok(report.rssGrowth < RSS_BOUND, `${who}'s RSS grew by ${mib(report.rssGrowth)}`);
  assert.ok(report.arrayBuffersGrowth < arrayBuffers, `${who}'s arrayBuffers grew by ${mib(report.arrayBuffersGrowth)}`);
}

// ---------------------------------------------------------------------------
// worker -> parent

for (const mode of ['iterate', 'handler']) {
  const style = mode === 'iterate' ? 'iterating with for await' : 'with an async onmessage handler';
  test(`a worker floods 256 MiB in 64 KiB messages to a parent consuming slowly ${style}: bounded memory, every byte in order`, async (t) => {
    // The parent waits 10 ms per MiB, so the worker is many times faster.
    const result = await runNode([fixture('slow-parent.fixture'), mode, String(FLOOD), String(64 * 1024), '16', '10'], 120000);
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    assert.equal(report.received, FLOOD);
    assert.equal(report.messages, FLOOD / (64 * 1024));
    assert.equal(report.digestOk, true, 'the SHA-256 of what arrived differs from what was sent');
    checkMemory(t, 'the parent', report);
  });
}

test('a parent that stops consuming pauses reading; the worker exits meanwhile and lifetime resolves once the queue is consumed', async () => {
  // 65 messages of 64 KiB: the consumer takes the first and the queue passes
  // the high-water mark with the last (64 queued), so all that is left in the
  // socket is the end of stream, and the worker can finish and exit while the
  // parent reads nothing.
  const count = 65;
  const size = 64 * 1024;
  assert.ok((count - 1) * size >= HIGH_WATER);
  const worker = await startFixture('burst.fixture', [String(count), String(size)]);
  const socket = worker.process.stdio[3];
  const paused = next(socket, 'pause');
  const exited = next(worker.process, 'exit');
  const ended = next(socket, 'end');
  const iterator = worker[Symbol.asyncIterator]();
  const first = await within(5000, 'the first message', iterator.next());
  assert.equal(first.value.readUInt32BE(0), 0);

  // The consumer holds on to its first message and asks for nothing more.
  await within(10000, 'reading to pause', paused);
  const [code, signal] = await within(10000, 'the worker to exit while the parent is paused', exited);
  assert.deepEqual({ code, signal }, { code: 0, signal: null });
  let settled = false;
  worker.lifetime.then(
    () => (settled = true),
    () => (settled = true),
  );
  // What the worker wrote is read once it is gone: the end of stream comes...
  await within(5000, 'the end of the stream', ended);
  // ...but lifetime waits for the consumer to take what is queued.
  assert.equal(settled, false, 'lifetime settled while messages were still queued for an iterator');

  const indexes = [0];
  for (;;) {
    const { value, done } = await within(5000, `message ${indexes.length}`, iterator.next());
    if (done) break;
    assert.equal(value.length, size);
    assert.equal(value[size - 1], indexes.length & 0xff);
    indexes.push(value.readUInt32BE(0));
  }
  assert.deepEqual(indexes, Array.from({ length: count }, (_, i) => i));
  await within(5000, 'lifetime', worker.lifetime);
  assert.deepEqual(await within(5000, 'close()', worker.close()), { exitCode: 0, signal: null });
});

test('a parent that never consumes still learns the exit status, and lifetime settles', async () => {
  // Reading pauses with the last of 64 messages of 64 KiB: the worker can
  // finish and exit.
  const count = 64;
  const worker = await startFixture('burst.fixture', [String(count), String(64 * 1024)]);
  const paused = next(worker.process.stdio[3], 'pause');
  await within(10000, 'reading to pause', paused);
  assert.deepEqual(await within(10000, 'close()', worker.close()), { exitCode: 0, signal: null });
  // Nothing is consuming: queued messages do not hold lifetime back.
  await within(5000, 'lifetime', worker.lifetime);
  let received = 0;
  for await (const message of worker) assert.equal(message.readUInt32BE(0), received++);
  assert.equal(received, count);
});

test('a write error while reading is paused loses none of the messages the worker sent', async () => {
  const count = 64;
  const size = 64 * 1024;
  const worker = await startFixture('burst.fixture', [String(count), String(size)]);
  await within(10000, 'reading to pause', next(worker.process.stdio[3], 'pause'));
  // The worker finishes and exits; its exit is not handled yet when the next
  // write fails (EPIPE), so the parent reads to the end of stream while
  // destroying the socket, paused or not.
  blockUntilZombie(worker.pid, 10000);
  await assert.rejects(within(5000, 'a send to fail', worker.send(Buffer.alloc(1024))), (err) => err.code === 'EPIPE');
  await within(5000, 'lifetime', worker.lifetime);
  let received = 0;
  for await (const message of worker) {
    assert.equal(message.readUInt32BE(0), received);
    assert.equal(message[size - 1], received & 0xff);
    received++;
  }
  assert.equal(received, count);
});

test('a write error while reading is paused keeps what the stream read ahead, in order', async () => {
  // 80 messages of 64 KiB: reading pauses after 64, while the worker still
  // has more to send than the socket holds. The stream reads ahead a little
  // (chunks it keeps without emitting them), the worker is killed, and the
  // next write fails: those chunks must come first, then the descriptor's.
  const size = 64 * 1024;
  const worker = await startFixture('burst.fixture', ['80', String(size)]);
  const socket = worker.process.stdio[3];
  await within(10000, 'reading to pause', next(socket, 'pause'));
  const deadline = performance.now() + 5000;
  while (socket.readableLength === 0) {
    assert.ok(performance.now() < deadline, 'the stream did not read ahead while paused');
    await new Promise((resolve) => setImmediate(resolve));
  }
  worker.kill('SIGKILL');
  blockUntilZombie(worker.pid, 10000);
  // The worker died: the failed send says so, with the write error as its cause.
  await assert.rejects(
    within(5000, 'a send to fail', worker.send(Buffer.alloc(1024))),
    (err) => err.code === 'ERR_WORKER_EXITED' && err.signal === 'SIGKILL' && err.cause.code === 'EPIPE',
  );
  // Killed in the middle of a frame: the stream is truncated, after every whole message.
  await assert.rejects(within(5000, 'lifetime', worker.lifetime), (err) => err.code === 'ERR_TRUNCATED');
  let received = 0;
  await assert.rejects(
    (async () => {
      for await (const message of worker) {
        assert.equal(message.readUInt32BE(0), received, 'a message is missing or out of order');
        assert.equal(message[size - 1], received & 0xff);
        received++;
      }
    })(),
    (err) => err.code === 'ERR_TRUNCATED' && err.signal === 'SIGKILL' && err.cause.code === 'ERR_WORKER_EXITED',
  );
  assert.ok(received > 64, `only the ${received} messages read before the pause arrived`);
});

test('messages larger than the high-water mark are delivered one at a time while reading pauses between them', async () => {
  const count = 3;
  const size = 16 * MiB;
  const worker = await startFixture('burst.fixture', [String(count), String(size)]);
  await within(10000, 'reading to pause', next(worker.process.stdio[3], 'pause'));
  let i = 0;
  await within(
    20000,
    'every large message',
    (async () => {
      for await (const message of worker) {
        assert.equal(message.length, size);
        assert.equal(message.readUInt32BE(0), i);
        assert.equal(message[size - 1], i & 0xff);
        i++;
      }
    })(),
  );
  assert.equal(i, count);
  await within(5000, 'lifetime', worker.lifetime);
});

test('an async onmessage handler gets one message at a time, in order', async () => {
  const count = 200;
  const worker = await startFixture('burst.fixture', [String(count), '16']);
  const indexes = [];
  let active = 0;
  let mostActive = 0;
  await within(
    10000,
    `${count} messages`,
    new Promise((resolve) => {
      worker.onmessage = async (message) => {
        mostActive = Math.max(mostActive, ++active);
        await new Promise((r) => setImmediate(r));
        indexes.push(message.readUInt32BE(0));
        active--;
        if (indexes.length === count) resolve();
      };
    }),
  );
  assert.equal(mostActive, 1, 'a handler was called before the previous one settled');
  assert.deepEqual(indexes, Array.from({ length: count }, (_, i) => i));
  await within(5000, 'lifetime', worker.lifetime);
});

// ---------------------------------------------------------------------------
// parent -> worker

test('a parent floods 128 MiB to a worker iterating slowly: the worker stays bounded and every byte arrives in order', async (t) => {
  const total = 128 * MiB;
  const size = 64 * 1024;
  // Sampled after a collection: the worker's live arrayBuffers, which an
  // unbounded queue would take to ~128 MiB.
  const worker = await startFixture('slow-reader.fixture', ['16', '10'], { execArgv: ['--expose-gc'] });
  const reports = [];
  worker.onmessage = (message) => reports.push(JSON.parse(String(message)));
  const message = Buffer.allocUnsafe(size);
  const hash = crypto.createHash('sha256');
  await within(
    120000,
    'the flood to be sent',
    (async () => {
      for (let i = 0, sent = 0; sent < total; i++, sent += size) {
        message.fill(i & 0xff);
        message.writeUInt32BE(i, 0);
        hash.update(message);
        await worker.send(message); // resolved: the socket is done with it
      }
    })(),
  );
  assert.deepEqual(await within(30000, 'close()', worker.close()), { exitCode: 0, signal: null });
  await within(5000, 'lifetime', worker.lifetime);
  assert.equal(reports.length, 1);
  const [report] = reports;
  assert.equal(report.received, total);
  assert.equal(report.messages, total / size);
  assert.equal(report.digest, hash.digest('hex'), 'the SHA-256 of what arrived differs from what was sent');
  // Live memory only (see above): the queue's 4 MiB, a read chunk or two, and
  // the message being hashed.
  checkMemory(t, 'the worker', report, { arrayBuffers: HIGH_WATER + 8 * MiB });
});
