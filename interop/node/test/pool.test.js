'use strict';

// createPool() with real worker processes (test/fixtures/serve.fixture).

const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { createPool, NoReplyError, PoolError, RequestTimeoutError, RemoteError } = require('../index.js');
const { fixture, within } = require('./helpers.js');

const SERVE = fixture('serve.fixture');

const pools = new Set();
async function startPool(options = {}, args = []) {
  const pool = await createPool(process.execPath, [SERVE, ...args], { isCommand: true, size: 2, ...options });
  pools.add(pool);
  return pool;
}

test.afterEach(async () => {
  // A failed test must not leave workers behind.
  for (const pool of pools) await pool.terminate();
  pools.clear();
});

const text = (s) => Buffer.from(s);
const alive = (pid) => fs.existsSync(`/proc/${pid}`);

/** Resolves once `pid` is gone or a zombie (polled: a process that is not our child has no event). */
async function ended(pid) {
  const { setTimeout: later } = require('node:timers/promises');
  for (;;) {
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    } catch {
      return;
    }
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) return;
    await later(10);
  }
}
/** This process's open descriptors, from /proc. */
const openFds = () => fs.readdirSync('/proc/self/fd').length;

/** Children of this process, from /proc. */
function childPids() {
  const children = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
    } catch {
      continue;
    }
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === process.pid) children.push(Number(name));
  }
  return children;
}

/** Small deterministic generator, so that a failing seed can be replayed. */
function random(seed) {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 0x100000000;
  };
}

test('map yields results in input order under random worker latencies', async () => {
  // Seeds and shapes (concurrency, window) vary; a failure names them.
  for (const [seed, concurrency, window] of [
    [1, 1, undefined],
    [2, 2, undefined],
    [3, 3, 2],
    [4, 2, 50],
  ]) {
    const pool = await startPool({ size: 3, concurrency });
    const rand = random(seed);
    const count = 60;
    const inputs = async function* () {
      for (let i = 0; i < count; i++) yield text(`sleep:${Math.floor(rand() * 15)}:${i}`);
    };
    const results = [];
    for await (const reply of pool.map(inputs(), { window })) results.push(String(reply));
    assert.deepEqual(results, Array.from({ length: count }, (_, i) => String(i)), `seed ${seed}, concurrency ${concurrency}, window ${window}`);
    await pool.close();
  }
  const pool = await startPool({ size: 3 });
  const unordered = [];
  const rand = random(9);
  const inputs = Array.from({ length: 40 }, (_, i) => text(`sleep:${Math.floor(rand() * 15)}:${i}`));
  for await (const reply of pool.imapUnordered(inputs)) unordered.push(Number(reply));
  assert.deepEqual(unordered.sort((a, b) => a - b), Array.from({ length: 40 }, (_, i) => i));
  await pool.close();
});

test('map reads its input lazily: an endless generator is read only a window ahead', async () => {
  const pool = await startPool({ size: 2 });
  let pulled = 0;
  const endless = async function* () {
    for (let i = 0; ; i++) {
      pulled++;
      yield text(`echo:${i}`);
    }
  };
  let taken = 0;
  for await (const reply of pool.map(endless(), { window: 8 })) {
    assert.equal(String(reply), String(taken));
    if (++taken === 100) break;
  }
  assert.ok(pulled <= 100 + 8, `pulled ${pulled} inputs for 100 results with a window of 8`);
  await pool.close();
});

test('a handler error rejects that request only, without retry or restart', async () => {
  const pool = await startPool({ size: 1 });
  const [pid] = pool.pids;
  await assert.rejects(pool.submit(text('throw:bad input')), (err) => err instanceof RemoteError && err.type === 'TypeError');
  assert.equal(String(await pool.submit(text('pid'))), String(pid));
  await pool.close();
});

test('a crash mid-request replaces the worker and retries the request elsewhere', async () => {
  const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wp-pool-')), 'crashed');
  const pool = await startPool({ size: 2 });
  const before = pool.pids;
  const replies = await within(
    30000,
    'the replies',
    Promise.all([pool.submit(text(`crash-once:${marker}:survived`)), pool.submit(text('echo:other'))]),
  );
  assert.deepEqual(replies.map(String), ['survived', 'other']);
  assert.equal(before.filter((pid) => pool.pids.includes(pid)).length, 1, 'one of the two workers was replaced');
  await pool.close();
});

test('a request that kills every worker it runs on fails after maxRetries with the death as the error', async () => {
  const log = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wp-pool-')), 'deaths');
  const pool = await startPool({ size: 2, maxRetries: 2 });
  let error;
  await assert.rejects(within(30000, 'the rejection', pool.submit(text(`exit-logged:${log}:9`))), (err) => {
    error = err;
    return err instanceof NoReplyError && err.exitCode === 9 && /exited with code 9/.test(err.message);
  });
  // 1 + 2 retries, each on a different worker; the error is the last one's death.
  const deaths = fs.readFileSync(log, 'latin1').trim().split('\n');
  assert.equal(deaths.length, 3);
  assert.equal(new Set(deaths).size, 3);
  assert.equal(String(error.pid), deaths[2]);
  // Replacements keep the pool usable.
  assert.equal(String(await pool.submit(text('echo:fine'))), 'fine');
  assert.ok(pool.pids.every((pid) => !deaths.includes(String(pid))));
  await pool.close();
});

test('requests queued behind a crash on the same worker are retried without being charged', async () => {
  const pool = await startPool({ size: 1, concurrency: 3, maxRetries: 0 });
  const crashing = pool.submit(text('exit:6'));
  const behind = [pool.submit(text('echo:a')), pool.submit(text('echo:b'))];
  await assert.rejects(within(20000, 'the rejection', crashing), { code: 'ERR_NO_REPLY', exitCode: 6 });
  assert.deepEqual((await within(20000, 'the other replies', Promise.all(behind))).map(String), ['a', 'b']);
  await pool.close();
});

test('a worker that dies between requests is replaced before a request is sent to it', async () => {
  const pool = await startPool({ size: 1, maxRetries: 0 });
  const [pid] = pool.pids;
  process.kill(pid, 'SIGKILL');
  const deadline = Date.now() + 20000;
  while (pool.pids.length === 0 || pool.pids[0] === pid) {
    assert.ok(Date.now() < deadline, `worker ${pid} was not replaced within 20 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(String(await pool.submit(text('echo:ok'))), 'ok');
  await pool.close();
});

test('a request that outlives its timeout kills and replaces its worker; others are not charged', async () => {
  const pool = await startPool({ size: 1, timeout: 200 });
  const [pid] = pool.pids;
  const hung = pool.submit(text('hang'));
  const queued = pool.submit(text('echo:after'), { timeout: null });
  await assert.rejects(within(10000, 'the timeout', hung), (err) => err instanceof RequestTimeoutError && err.pid === pid && err.timeout === 200);
  assert.equal(String(await within(10000, 'the next reply', queued)), 'after');
  const [replacement] = pool.pids;
  assert.notEqual(replacement, pid);
  await pool.close();
  assert.ok(!alive(pid), `worker ${pid} still exists`);
});

test('maxRequestsPerWorker recycles workers', async () => {
  const pool = await startPool({ size: 1, maxRequestsPerWorker: 3 });
  const pids = [];
  for (let i = 0; i < 9; i++) pids.push(String(await pool.submit(text('pid'))));
  assert.equal(new Set(pids).size, 3, `pids: ${pids}`);
  assert.deepEqual(pids.slice(0, 3), [pids[0], pids[0], pids[0]]);
  await pool.close();
  for (const pid of new Set(pids)) assert.ok(!alive(Number(pid)), `worker ${pid} still exists`);
});

test('start-up failures fail fast', async (t) => {
  await t.test('a program that exits before the handshake', async () => {
    await assert.rejects(
      within(20000, 'createPool', createPool(process.execPath, [fixture('exit-early.fixture'), '4'], { isCommand: true, size: 2 })),
      { code: 'ERR_WORKER_EXITED', exitCode: 4 },
    );
  });
  await t.test('a program that does not exist', async () => {
    await assert.rejects(createPool('/nonexistent/worker-program', [], { size: 2 }), { code: 'ENOENT' });
  });
  await t.test('a program that never answers the handshake', async () => {
    await assert.rejects(
      within(20000, 'createPool', createPool(process.execPath, [fixture('silent.fixture')], { isCommand: true, size: 2, handshakeTimeout: 300 })),
      { code: 'ERR_HANDSHAKE_TIMEOUT' },
    );
  });
  // Nothing was left running.
  assert.deepEqual(childPids(), []);
  await t.test('a replacement that cannot start breaks the pool instead of restarting in a loop', async () => {
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'wp-pool-')), 'started');
    const pool = await startPool({ size: 1 }, ['start-once', marker]);
    const crashing = pool.submit(text('exit:1'));
    await assert.rejects(
      within(20000, 'the rejection', crashing),
      (err) => err instanceof PoolError && err.reason === 'broken' && err.code === 'ERR_POOL_BROKEN' && err.cause.exitCode === 2,
    );
    await assert.rejects(pool.submit(text('echo:x')), { code: 'ERR_POOL_BROKEN' });
    await pool.close();
  });
});

test('close() finishes submitted work, then every worker exits 0 and is reaped', async () => {
  const fds = openFds();
  const pool = await startPool({ size: 3 });
  const pids = pool.pids;
  assert.deepEqual(childPids().sort(), [...pids].sort());
  const work = [1, 2, 3, 4, 5, 6].map((i) => pool.submit(text(`sleep:20:${i}`)));
  const closed = pool.close();
  await assert.rejects(pool.submit(text('echo:late')), { code: 'ERR_POOL_CLOSED' });
  assert.deepEqual((await Promise.all(work)).map(String), ['1', '2', '3', '4', '5', '6']);
  await within(20000, 'close()', closed);
  assert.deepEqual(pool.pids, []);
  assert.deepEqual(childPids(), []);
  for (const pid of pids) assert.ok(!alive(pid), `worker ${pid} still exists`);
  assert.equal(openFds(), fds, 'descriptors left open');
});

test('terminate() fails pending requests and kills every worker', async () => {
  const fds = openFds();
  const pool = await startPool({ size: 2 });
  const pids = pool.pids;
  const pending = [pool.submit(text('hang')), pool.submit(text('hang')), pool.submit(text('echo:queued'))];
  const rejected = Promise.all(pending.map((p) => assert.rejects(p, { code: 'ERR_POOL_TERMINATED' })));
  await within(20000, 'terminate()', pool.terminate());
  await rejected;
  assert.deepEqual(childPids(), []);
  for (const pid of pids) assert.ok(!alive(pid), `worker ${pid} still exists`);
  await assert.rejects(pool.submit(text('echo:x')), { code: 'ERR_POOL_TERMINATED' });
  assert.equal(openFds(), fds, 'descriptors left open');
});

for (const signal of ['SIGKILL', 'SIGINT']) {
  test(`when the parent dies of ${signal}, every worker of its pool exits with code 1`, async () => {
    const parent = spawn(process.execPath, [fixture('pool-parent.fixture'), '3'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    parent.stdout.on('data', (d) => (stdout += d));
    // The workers inherit the parent's stderr: it ends once all of them are gone.
    const stderrClosed = new Promise((resolve) => parent.stderr.on('end', resolve));
    parent.stderr.on('data', (d) => (stderr += d));
    try {
      await within(
        20000,
        'the pool to start',
        new Promise((resolve) => parent.stdout.on('data', () => stdout.includes('\n') && resolve())),
      );
      const pids = JSON.parse(stdout);
      assert.equal(pids.length, 3);
      parent.kill(signal);
      await within(20000, `the workers to exit (stderr so far: ${stderr})`, stderrClosed);
      for (const pid of pids) {
        assert.match(stderr, new RegExp(`^exit ${pid} 1$`, 'm'));
        // Its stderr closes as the process exits, a moment before it is gone.
        await within(5000, `worker ${pid} to be gone`, ended(pid));
      }
      assert.match(stderr, /channel to the parent broke/);
    } finally {
      parent.kill('SIGKILL');
    }
  });
}

test('options are checked before anything starts', async () => {
  await assert.rejects(createPool(SERVE, [], { size: 0 }), RangeError);
  await assert.rejects(createPool(SERVE, [], { maxRetries: -1 }), RangeError);
  await assert.rejects(createPool(SERVE, [], { timeout: 'soon' }), RangeError);
  assert.deepEqual(childPids(), []);
});
