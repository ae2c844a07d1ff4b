'use strict';

// Live tests: a Node parent (this process, or an intermediate one) talking to
// real worker processes from test/fixtures/.

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const {
  createWorker,
  HandshakeError,
  MessageTooLargeError,
  TruncatedStreamError,
  ProtocolError,
} = require('../index.js');

const { fixture, track, startFixture, killRunning, within } = require('./helpers.js');

test.afterEach(killRunning);

/** Collect the next `count` messages from a worker. */
function collect(worker, count, ms = 10000) {
  const messages = [];
  return within(
    ms,
    `${count} messages (got ${messages.length})`,
    new Promise((resolve) => {
      if (count === 0) resolve(messages);
      worker.onmessage = (message) => {
        messages.push(message);
        if (messages.length === count) resolve(messages);
      };
    }),
  ).catch((err) => {
    err.message += ` (received ${messages.length})`;
    throw err;
  });
}

/** Run a Node script to completion and capture its output. */
function runNode(args, { timeout = 10000, stdio = ['ignore', 'pipe', 'pipe'], env } = {}) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { stdio, env });
    let stdout = '';
    let stderr = '';
    if (child.stdout) child.stdout.on('data', (d) => (stdout += d));
    if (child.stderr) child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`node ${args.join(' ')} did not finish within ${timeout} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeout);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** Poll for a file (written by a process that is not our child). */
async function waitForFile(file, ms, what) {
  const deadline = performance.now() + ms;
  for (;;) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch (err) {
      if (err.code !== 'ENOENT') throw err;
    }
    if (performance.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function tmpPath(name) {
  return path.join(os.tmpdir(), `worker-process-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}-${name}`);
}

function randomBytes(length, seed) {
  const buf = Buffer.allocUnsafe(length);
  let x = seed * 2654435761 >>> 0;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    buf[i] = x & 0xff;
  }
  return buf;
}

// ---------------------------------------------------------------------------
// data transfer

test('echo of 0 B, 1 B, 64 KiB and 16 MiB messages', async () => {
  const worker = await startFixture('echo.fixture');
  const payloads = [0, 1, 64 * 1024, 16 * 1024 * 1024].map((size, i) => randomBytes(size, i + 1));
  const replies = collect(worker, payloads.length, 20000);
  for (const payload of payloads) worker.send(payload);
  const received = await replies;
  for (let i = 0; i < payloads.length; i++) {
    assert.equal(received[i].length, payloads[i].length, `length of reply ${i}`);
    assert.ok(received[i].equals(payloads[i]), `content of reply ${i}`);
  }
  assert.deepEqual(await within(5000, 'close()', worker.close()), { exitCode: 0, signal: null });
  await within(5000, 'lifetime', worker.lifetime);
});

test('10 000 messages in order in both directions at once', async () => {
  const count = 10000;
  const worker = await startFixture('duplex.fixture', [String(count)]);
  const received = collect(worker, 2 * count, 20000);
  const sends = [];
  for (let i = 0; i < count; i++) sends.push(worker.send(Buffer.from(`p:${i}`)));
  await within(10000, 'all sends', Promise.all(sends));
  const messages = (await received).map(String);
  const echoed = messages.filter((m) => m.startsWith('p:'));
  const own = messages.filter((m) => m.startsWith('w:'));
  assert.equal(echoed.length, count);
  assert.equal(own.length, count);
  for (let i = 0; i < count; i++) {
    assert.equal(echoed[i], `p:${i}`);
    assert.equal(own[i], `w:${i}`);
  }
  await within(5000, 'close()', worker.close());
  await within(5000, 'lifetime', worker.lifetime);
});

test('finish() followed by process.exit(0) loses nothing and lifetime resolves', async () => {
  const count = 2000;
  const size = 4096; // 8 MiB in total, far more than a socket buffer holds
  const worker = await startFixture('burst.fixture', [String(count), String(size)]);
  const messages = [];
  worker.onmessage = (message) => messages.push(message);
  await within(10000, 'lifetime', worker.lifetime);
  assert.equal(messages.length, count);
  for (let i = 0; i < count; i++) {
    assert.equal(messages[i].length, size);
    assert.equal(messages[i].readUInt32BE(0), i);
    assert.equal(messages[i][size - 1], i & 0xff);
  }
});

/** Send `payload` in a loop, each send awaited, until one is rejected. */
async function sendUntilRejected(worker, payload) {
  let sent = 0;
  for (;;) {
    try {
      await worker.send(payload);
    } catch (err) {
      return { sent, error: err };
    }
    sent++;
  }
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

function checkBurst(messages, count) {
  assert.equal(messages.length, count);
  for (let i = 0; i < count; i++) assert.equal(messages[i].readUInt32BE(0), i, `message ${i}`);
}

test('a worker that exits 0 while the parent writes: its unread messages arrive and lifetime resolves', async () => {
  const count = 1000;
  const worker = await startFixture('burst.fixture', [String(count), '16']);
  const messages = [];
  worker.onmessage = (message) => messages.push(message);
  // Hold back the event loop until the worker is gone, so that its messages
  // are still unread in the socket when the parent's next write fails (EPIPE).
  blockUntilZombie(worker.pid, 10000);
  const before = messages.length;
  assert.ok(before < count, `the test needs unread messages (${before} were already read)`);
  const { sent, error } = await within(10000, 'a send to fail', sendUntilRejected(worker, Buffer.alloc(1024, 0x61)));
  assert.equal(sent, 0);
  assert.equal(error.code, 'EPIPE');
  await within(5000, 'lifetime', worker.lifetime);
  checkBurst(messages, count);
  await assert.rejects(worker.send(Buffer.from('late')), (err) => err.code === 'ERR_CHANNEL_CLOSED');
});

test('a parent sending in a loop while its worker sends 1000 messages and exits 0 receives them all', async () => {
  const count = 1000;
  for (const size of [16, 4096]) {
    const worker = await startFixture('burst.fixture', [String(count), String(size)]);
    const messages = [];
    worker.onmessage = (message) => messages.push(message);
    const sending = sendUntilRejected(worker, Buffer.alloc(1024, 0x62));
    await within(10000, 'lifetime', worker.lifetime);
    checkBurst(messages, count);
    const { error } = await within(5000, 'a send to fail', sending);
    // Which error the first failed send gets depends on timing: the write
    // itself failed (EPIPE, ECONNRESET), or the socket was destroyed at the
    // worker's end with the write still queued (ERR_STREAM_DESTROYED; Node.js 24
    // reports a write libuv already held as ECANCELED), or the send came after.
    const codes = ['EPIPE', 'ECONNRESET', 'ECANCELED', 'ERR_CHANNEL_CLOSED', 'ERR_STREAM_DESTROYED'];
    assert.ok(codes.includes(error.code), String(error));
  }
});

test('5 000 un-awaited sends complete in linear time', async () => {
  const worker = await startFixture('onend.fixture');
  const payload = Buffer.alloc(1024, 0x61);
  const burst = async (n) => {
    const started = performance.now();
    const sends = [];
    for (let i = 0; i < n; i++) sends.push(worker.send(payload));
    await within(20000, `${n} sends`, Promise.all(sends));
    return performance.now() - started;
  };
  const best = async (n, runs) => {
    let fastest = Infinity;
    for (let i = 0; i < runs; i++) fastest = Math.min(fastest, await burst(n));
    return fastest;
  };
  await burst(5000); // warm-up
  // Best of a few runs, so that one garbage collection does not decide the ratio.
  const t5k = await best(5000, 3);
  const t20k = await best(20000, 3);
  assert.ok(t5k < 2000, `5 000 sends took ${t5k.toFixed(1)} ms`);
  // A floor keeps scheduler noise on a tiny baseline from failing the ratio;
  // quadratic buffering would be slower than this by orders of magnitude.
  assert.ok(t20k < 6 * Math.max(t5k, 150), `20 000 sends took ${t20k.toFixed(1)} ms vs ${t5k.toFixed(1)} ms for 5 000`);
  const summary = collect(worker, 1);
  await within(5000, 'close()', worker.close());
  const total = 5000 + 3 * 5000 + 3 * 20000;
  assert.equal(String((await summary)[0]), `count:${total} bytes:${total * 1024}`);
  await within(5000, 'lifetime', worker.lifetime);
});

test('messages that arrive before onmessage is set are queued and delivered in order', async () => {
  const worker = await startFixture('early-messages.fixture');
  // No consumer yet: lifetime still settles once the worker is done.
  await within(5000, 'close()', worker.close());
  await within(5000, 'lifetime', worker.lifetime);
  const got = [];
  await within(
    5000,
    'queued messages',
    new Promise((resolve) => {
      worker.onmessage = (message) => {
        got.push(String(message));
        if (got.length === 5) resolve();
      };
    }),
  );
  assert.deepEqual(got, ['early:0', 'early:1', 'early:2', 'early:3', 'early:4']);
});

test('the parent can read messages with for await', async () => {
  const worker = await startFixture('early-messages.fixture');
  const got = [];
  await within(
    5000,
    'the iterator to end',
    (async () => {
      for await (const message of worker) got.push(String(message));
    })(),
  );
  assert.deepEqual(got, ['early:0', 'early:1', 'early:2', 'early:3', 'early:4']);
  await within(5000, 'close()', worker.close());
  await within(5000, 'lifetime', worker.lifetime);
});

// ---------------------------------------------------------------------------
// worker-side lifecycle

test('onend runs after the last message and what it sends still arrives', async () => {
  const worker = await startFixture('onend.fixture');
  for (const text of ['a', 'bb', 'ccc']) worker.send(Buffer.from(text));
  const summary = collect(worker, 1);
  await within(5000, 'close()', worker.close());
  assert.equal(String((await summary)[0]), 'count:3 bytes:6');
  await within(5000, 'lifetime', worker.lifetime);
});

test('an async-iterator worker answers everything and can send after its loop', async () => {
  const worker = await startFixture('iterate.fixture');
  for (const text of ['x', 'yy', 'zzz']) worker.send(Buffer.from(text));
  const replies = collect(worker, 4);
  const closed = worker.close();
  assert.deepEqual((await replies).map(String), ['X', 'YY', 'ZZZ', 'done:3']);
  assert.deepEqual(await within(5000, 'close()', closed), { exitCode: 0, signal: null });
  await within(5000, 'lifetime', worker.lifetime);
});

test('a message over the worker limit makes the worker exit with code 1 and say why', async () => {
  const worker = await startFixture('iterate.fixture', ['10'], { stdio: ['inherit', 'inherit', 'pipe'] });
  let stderr = '';
  worker.process.stderr.on('data', (d) => (stderr += d));
  const stderrDone = new Promise((resolve) => worker.process.stderr.on('end', resolve));
  worker.send(Buffer.alloc(11));
  await assert.rejects(within(5000, 'lifetime', worker.lifetime), (err) => err.code === 1 && err.signal === null);
  await within(5000, 'stderr', stderrDone);
  assert.match(stderr, /^worker-process: channel to the parent broke: .*exceeds the limit of 10 bytes\n$/);
});

test('when the parent is SIGKILLed an idle worker exits with code 1 within 1 s', async () => {
  const exitFile = tmpPath('exit-code');
  const parent = spawn(process.execPath, [fixture('parent-of-idle.fixture'), exitFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  try {
    let stdout = '';
    let stderr = '';
    parent.stderr.on('data', (d) => (stderr += d));
    const stderrDone = new Promise((resolve) => parent.stderr.on('end', resolve));
    const pid = await within(
      10000,
      'the intermediate parent to print the worker pid',
      new Promise((resolve, reject) => {
        parent.stdout.on('data', (d) => {
          stdout += d;
          if (stdout.includes('\n')) resolve(Number(stdout.trim()));
        });
        parent.on('exit', (code) => reject(new Error(`intermediate parent exited early (${code}): ${stderr}`)));
      }),
    );
    assert.ok(pid > 0);
    const parentGone = new Promise((resolve) => parent.on('exit', resolve));
    const killedAt = performance.now();
    parent.kill('SIGKILL');
    const code = await waitForFile(exitFile, 1000, 'the orphaned worker to exit');
    const elapsed = performance.now() - killedAt;
    assert.equal(code, '1');
    assert.ok(elapsed < 1000, `worker took ${elapsed.toFixed(0)} ms to exit`);
    await within(5000, 'the intermediate parent to be reaped', parentGone);
    await within(5000, "the worker's stderr to close", stderrDone);
    assert.match(stderr, /worker-process: channel to the parent broke: parent process \d+ (is gone|has exited|is exiting)/);
  } finally {
    parent.kill('SIGKILL');
    fs.rmSync(exitFile, { force: true });
  }
});

/** Play the parent by hand: write `bytes` to a worker's fd 3, end, and record everything. */
function rawParent(name, bytes, ms = 5000) {
  return within(
    ms,
    `${name} to exit`,
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [fixture(name)], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
      const channel = child.stdio[3];
      const received = [];
      let stderr = '';
      let exit = null;
      let ended = false;
      const done = () => {
        if (exit && ended) resolve({ ...exit, bytes: Buffer.concat(received), stderr });
      };
      child.stderr.on('data', (d) => (stderr += d));
      channel.on('data', (d) => received.push(d));
      channel.on('error', () => {});
      channel.on('close', () => {
        ended = true;
        done();
      });
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        exit = { code, signal };
        // stderr is complete once the child is gone and the pipe drained.
        child.stderr.on('close', done);
        if (child.stderr.closed) done();
      });
      channel.end(bytes);
    }),
  );
}

test('worker side, byte for byte: handshake, echo and exit 0 at the parent\'s end of stream', async () => {
  const request = Buffer.from('0000000002686900000000', 'hex'); // 0x00, frame "hi", empty frame
  const result = await rawParent('echo.fixture', request);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.bytes.toString('hex'), '01' + '000000026869' + '00000000');
  assert.equal(result.stderr, '');
});

test('worker side: a bad handshake byte or a truncated frame makes the worker exit with code 1', async () => {
  const bad = await rawParent('echo.fixture', Buffer.from([0x05]));
  assert.equal(bad.code, 1);
  assert.equal(bad.bytes.length, 0, 'nothing may be answered to a bad handshake');
  assert.match(bad.stderr, /^worker-process: channel to the parent broke: bad handshake byte: expected 0x00, got 0x05\n$/);

  const truncated = await rawParent('echo.fixture', Buffer.from('00000000056869', 'hex'));
  assert.equal(truncated.code, 1);
  assert.equal(truncated.bytes.toString('hex'), '01');
  assert.match(truncated.stderr, /^worker-process: channel to the parent broke: stream ended inside the payload \(3 bytes missing\)\n$/);
});

test('worker side: a parent that releases its socket without finishing makes the worker exit with code 1', async () => {
  const result = await within(
    5000,
    'the worker to exit',
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [fixture('echo.fixture')], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
      const channel = child.stdio[3];
      let stderr = '';
      child.stderr.on('data', (d) => (stderr += d));
      channel.on('error', () => {});
      channel.once('data', () => {
        // The handshake is done: close the whole socket while this process lives on.
        channel.destroy();
      });
      child.on('error', reject);
      child.on('close', (code, signal) => resolve({ code, signal, stderr }));
      channel.write(Buffer.from([0x00]));
    }),
  );
  assert.equal(result.code, 1, result.stderr);
  assert.match(result.stderr, /^worker-process: channel to the parent broke: the parent closed the channel without finishing \(EPIPE\)\n$/);
});

// ---------------------------------------------------------------------------
// exits, signals, timeouts

test('a non-zero exit code is reported on lifetime after the messages', async () => {
  const worker = await startFixture('exit-code.fixture', ['3']);
  const messages = [];
  worker.onmessage = (message) => messages.push(String(message));
  await assert.rejects(
    within(5000, 'lifetime', worker.lifetime),
    (err) => err.code === 3 && err.exitCode === 3 && err.signal === null && /code 3/.test(err.message),
  );
  assert.deepEqual(messages, ['bye']);
});

test('death by SIGKILL is reported on lifetime', async () => {
  const worker = await startFixture('echo.fixture');
  assert.equal(worker.kill('SIGKILL'), true);
  await assert.rejects(within(5000, 'lifetime', worker.lifetime), (err) => err.code === null && err.signal === 'SIGKILL');
});

test('a bad handshake byte fails createWorker in under a second', async () => {
  const started = performance.now();
  await assert.rejects(
    createWorker(process.execPath, [fixture('bad-handshake.fixture')], { isCommand: true }),
    (err) =>
      err instanceof HandshakeError &&
      err instanceof ProtocolError &&
      err.code === 'ERR_BAD_HANDSHAKE' &&
      err.expected === 1 &&
      err.got === 7 &&
      err.signal === 'SIGKILL',
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed < 1000, `took ${elapsed.toFixed(0)} ms`);
});

test('a worker that never handshakes fails after handshakeTimeout and is killed', async () => {
  const started = performance.now();
  await assert.rejects(
    createWorker(process.execPath, [fixture('silent.fixture')], { isCommand: true, handshakeTimeout: 300 }),
    (err) => err.code === 'ERR_HANDSHAKE_TIMEOUT' && err.signal === 'SIGKILL',
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 3000, `took ${elapsed.toFixed(0)} ms`);
});

test('a worker that exits before the handshake is reported with its exit code', async () => {
  await assert.rejects(
    createWorker(process.execPath, [fixture('exit-early.fixture'), '5'], { isCommand: true }),
    (err) => err.code === 'ERR_WORKER_EXITED' && err.exitCode === 5 && err.signal === null,
  );
});

test('a spawn failure rejects with the spawn error', async () => {
  await assert.rejects(createWorker(path.join(os.tmpdir(), 'no-such-program-for-worker-process')), (err) => err.code === 'ENOENT');
});

test('maxDuration kills the worker and rejects lifetime with ERR_MAX_DURATION', async () => {
  // The limit counts from the spawn: it must leave a loaded machine time to
  // start Node.js and complete the handshake.
  const worker = await startFixture('ignore-term.fixture', [], { maxDuration: 3000 });
  await assert.rejects(
    within(15000, 'lifetime', worker.lifetime),
    (err) => err.code === 'ERR_MAX_DURATION' && err.signal === 'SIGKILL' && err.exitCode === null,
  );
});

test('an oversized frame from the worker kills it and rejects lifetime', async () => {
  const worker = await startFixture('raw.fixture', ['oversized'], { maxMessageSize: 1024 });
  await assert.rejects(
    within(5000, 'lifetime', worker.lifetime),
    (err) => err instanceof MessageTooLargeError && err.length === 1024 * 1024 && err.limit === 1024 && err.signal === 'SIGKILL',
  );
});

test('a truncated frame from the worker rejects lifetime', async () => {
  const worker = await startFixture('raw.fixture', ['truncated']);
  await assert.rejects(
    within(5000, 'lifetime', worker.lifetime),
    (err) => err instanceof TruncatedStreamError && err.stage === 'payload' && err.missing === 90 && err.exitCode === 0,
  );
});

test('lifetime rejections do not crash a parent that never looks at lifetime', async () => {
  const script = `
    const { createWorker } = require(${JSON.stringify(path.join(__dirname, '..', 'index.js'))});
    createWorker(process.execPath, [${JSON.stringify(fixture('exit-code.fixture'))}, '3'], { isCommand: true })
      .then((worker) => { worker.onmessage = (m) => console.log('got ' + m); });
  `;
  const result = await runNode(['-e', script]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, 'got bye\n');
});

// ---------------------------------------------------------------------------
// close()

test('close() on an echo worker resolves and lifetime resolves', async () => {
  const worker = await startFixture('echo.fixture');
  const reply = collect(worker, 1);
  worker.send(Buffer.from('last words'));
  const closed = worker.close();
  assert.equal(String((await reply)[0]), 'last words');
  assert.deepEqual(await within(5000, 'close()', closed), { exitCode: 0, signal: null });
  await within(5000, 'lifetime', worker.lifetime);
  await assert.rejects(worker.send(Buffer.from('late')), (err) => err.code === 'ERR_CHANNEL_CLOSED');
});

test('close() escalates to SIGKILL for a worker that ignores SIGTERM', async () => {
  const worker = await startFixture('ignore-term.fixture');
  const started = performance.now();
  const result = await within(5000, 'close()', worker.close({ timeout: 200 }));
  const elapsed = performance.now() - started;
  assert.deepEqual(result, { exitCode: null, signal: 'SIGKILL' });
  assert.ok(elapsed >= 390, `escalated after ${elapsed.toFixed(0)} ms`);
  await assert.rejects(worker.lifetime, (err) => err.signal === 'SIGKILL');
});

// ---------------------------------------------------------------------------
// process-level behaviour

test("the worker's stdout is forwarded to the parent's stdout", async () => {
  const marker = `marker-${process.pid}`;
  const result = await runNode([fixture('run-parent.fixture'), marker]);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, new RegExp(`hello from worker ${marker}\n`));
  assert.match(result.stdout, /still printing after the handshake\n/);
  assert.match(result.stdout, /parent got ok\n/);
  assert.match(result.stdout, /worker lifetime resolved\n/);
});

test('a parent exits promptly once its worker is done (no timer keeps it alive)', async () => {
  // run-parent.fixture leaves maxDuration at its 60 s default.
  const result = await runNode([fixture('run-parent.fixture')], { timeout: 20000 });
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /worker lifetime resolved\n/);
  assert.ok(result.ms < 5000, `parent took ${result.ms.toFixed(0)} ms to exit`);
});

test("a worker gets none of its parent's inheritable descriptors", async () => {
  const marker = tmpPath('inherited');
  fs.writeFileSync(marker, '');
  const fd = fs.openSync(marker, 'r');
  try {
    // The intermediate parent gets the marker as descriptors 7 and 100, without close-on-exec.
    const stdio = ['ignore', 'pipe', 'pipe'];
    for (let i = 3; i <= 100; i++) stdio.push('ignore');
    stdio[7] = fd;
    stdio[100] = fd;
    const result = await runNode([fixture('fds-parent.fixture')], { stdio });
    assert.equal(result.code, 0, result.stderr);
    const report = JSON.parse(result.stdout);
    const leaked = Object.entries(report.fds).filter(([, target]) => target === fs.realpathSync(marker));
    assert.deepEqual(leaked, [], `the worker inherited ${JSON.stringify(leaked)}`);
    assert.ok(report.fds['3'].startsWith('socket:'), `fd 3 is ${report.fds['3']}`);
    assert.notEqual(report.spawnfile, process.execPath, 'the worker is started through a shell that closes them');
    assert.equal(report.missing, 'ENOENT', 'a missing program still fails the spawn');
  } finally {
    fs.closeSync(fd);
    fs.rmSync(marker, { force: true });
  }
});

test('connect() outside a worker fails with ERR_NO_CHANNEL', async () => {
  const missing = await runNode([fixture('no-channel.fixture')]);
  // Started directly, fd 3 is either closed or one of Node's own descriptors.
  assert.match(missing.stdout, /^ERR_NO_CHANNEL: no channel to a parent: file descriptor 3 is not (open|a socket)/);

  const file = tmpPath('not-a-socket');
  fs.writeFileSync(file, '');
  const fd = fs.openSync(file, 'r');
  try {
    const notSocket = await runNode([fixture('no-channel.fixture')], { stdio: ['ignore', 'pipe', 'pipe', fd] });
    assert.match(notSocket.stdout, /^ERR_NO_CHANNEL: no channel to a parent: file descriptor 3 is not a socket \(it is a regular file/);
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
});

test('a worker can itself be a parent, and its fd 3 does not leak to its children', async () => {
  const worker = await startFixture('nested.fixture');
  const first = await collect(worker, 1);
  assert.equal(String(first[0]), 'fd3 leaked:false');
  const replies = collect(worker, 2);
  worker.send(Buffer.from('one'));
  worker.send(Buffer.from('two'));
  assert.deepEqual((await replies).map(String), ['inner:one', 'inner:two']);
  assert.deepEqual(await within(10000, 'close()', worker.close()), { exitCode: 0, signal: null });
  await within(5000, 'lifetime', worker.lifetime);
});

test('.js, .mjs and .cjs workers run under this Node', async () => {
  const target = JSON.stringify(fixture('echo.fixture'));
  const sources = {
    '.js': `require(${target});\n`,
    '.cjs': `require(${target});\n`,
    '.mjs': `import { createRequire } from 'node:module';\ncreateRequire(import.meta.url)(${target});\n`,
  };
  for (const [ext, source] of Object.entries(sources)) {
    const file = tmpPath(`echo${ext}`);
    fs.writeFileSync(file, source);
    try {
      const worker = await createWorker(file);
      track(worker);
      const reply = collect(worker, 1);
      worker.send(Buffer.from(ext));
      assert.equal(String((await reply)[0]), ext);
      await within(5000, 'close()', worker.close());
      await within(5000, 'lifetime', worker.lifetime);
    } finally {
      fs.rmSync(file, { force: true });
    }
  }
});

const hasPython = spawnSync('python3', ['--version']).status === 0;

test('a Python worker, by .py extension and as a command', { skip: !hasPython && 'python3 not found' }, async () => {
  const script = fixture('echo.py');
  for (const [file, args, options] of [
    [script, [], {}],
    ['python3', [script], { isCommand: true }],
  ]) {
    const worker = await createWorker(file, args, options);
    track(worker);
    const replies = collect(worker, 3);
    for (const text of ['abc', '', 'xy']) worker.send(Buffer.from(text));
    assert.deepEqual((await replies).map(String), ['cba', '', 'yx']);
    assert.deepEqual(await within(5000, 'close()', worker.close()), { exitCode: 0, signal: null });
    await within(5000, 'lifetime', worker.lifetime);
  }
  const failing = await createWorker(script, [], { env: { ...process.env, ECHO_EXIT_CODE: '4' } });
  await failing.close();
  await assert.rejects(failing.lifetime, (err) => err.code === 4);
});
