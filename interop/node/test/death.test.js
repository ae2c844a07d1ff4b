'use strict';

// A worker's death explains itself: after it died, send(), receiving and
// close({ check: true }) report a WorkerExitError with its exit status and,
// with stderrTail, the last lines of its stderr.

const test = require('node:test');
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const path = require('node:path');

const { createWorker, WorkerExitError, defaults } = require('../index.js');

const { FIXTURES, startFixture, within } = require('./fixtures/harness.fixture');

/** Iterate the worker's messages; resolves with them, or rejects with the iteration's error (err.received). */
async function drain(worker) {
  const received = [];
  try {
    for await (const message of worker) received.push(String(message));
  } catch (err) {
    err.received = received;
    throw err;
  }
  return received;
}

test('the defaults: no stderr tail, close() does not check', () => {
  assert.equal(defaults.createWorker.stderrTail, 0);
  assert.equal(defaults.close.check, false);
  assert.equal(defaults.createWorker.maxDuration, null);
});

test('a send after the worker was killed rejects with a WorkerExitError', async () => {
  const worker = await startFixture('echo.fixture');
  worker.kill('SIGKILL');
  await within(10000, 'the exit', new Promise((resolve) => worker.process.once('exit', resolve)));
  const err = await within(10000, 'the send to fail', worker.send(Buffer.from('late')).then(
    () => assert.fail('the send resolved'),
    (e) => e,
  ));
  assert.ok(err instanceof WorkerExitError, err.stack);
  assert.equal(err.code, 'ERR_WORKER_EXITED');
  assert.equal(err.exitCode, null);
  assert.equal(err.signal, 'SIGKILL');
  assert.match(err.message, /killed by SIGKILL/);
});

test('a send pending when the worker dies reports its death', async () => {
  // The worker never consumes: it reads until 4 MiB of messages wait in its
  // queue, so the last of 64 sends of 1 MiB stays pending until it is killed.
  const worker = await startFixture('dies-loudly.fixture', ['0', 'linger']);
  let settled = false;
  let last;
  for (let i = 0; i < 64; i++) last = worker.send(Buffer.alloc(1024 * 1024));
  const sending = last.then(
    () => assert.fail('64 MiB of sends to a worker that does not read completed'),
    (e) => e,
  );
  sending.finally(() => {
    settled = true;
  });
  await new Promise((resolve) => setImmediate(resolve)); // the write has started
  assert.equal(settled, false, 'the send settled before the worker was killed');
  worker.kill('SIGKILL');
  const err = await within(10000, 'the send to fail', sending);
  assert.ok(err instanceof WorkerExitError, err.stack);
  assert.equal(err.signal, 'SIGKILL');
  assert.ok(err.cause && typeof err.cause.code === 'string', 'the write error is the cause');
});

test('iterating a worker that exits with code 3 yields its messages, then its death', async () => {
  const worker = await startFixture('dies-loudly.fixture', ['0', '3']);
  const err = await within(10000, 'the iteration to end', drain(worker).then(
    (received) => assert.fail(`the iteration ended cleanly after ${received}`),
    (e) => e,
  ));
  assert.deepEqual(err.received, ['bye']);
  assert.ok(err instanceof WorkerExitError, err.stack);
  assert.equal(err.exitCode, 3);
  assert.equal(err.signal, null);
  await assert.rejects(worker.lifetime, (e) => e.code === 3);
});

test('a worker that exits 0 ends the iteration cleanly', async () => {
  const worker = await startFixture('dies-loudly.fixture', ['0', '0']);
  assert.deepEqual(await within(10000, 'the iteration', drain(worker)), ['bye']);
  await within(5000, 'lifetime', worker.lifetime);
});

test('a worker that finishes its stream and lives on ends the iteration cleanly, within a bounded wait', async () => {
  const worker = await startFixture('dies-loudly.fixture', ['0', 'linger']);
  const started = performance.now();
  assert.deepEqual(await within(10000, 'the iteration', drain(worker)), ['bye']);
  // The end waits at most about a second for an exit status that does not come.
  assert.ok(performance.now() - started < 8000);
  assert.deepEqual(await within(10000, 'close()', worker.close({ timeout: 100 })), { exitCode: null, signal: 'SIGTERM' });
});

test('stderrTail puts the last lines of stderr in the error', async () => {
  const worker = await startFixture('dies-loudly.fixture', ['5', '2'], { stderrTail: 2, stdio: ['inherit', 'inherit', 'pipe'] });
  const err = await within(10000, 'the iteration to end', drain(worker).then(
    () => assert.fail('the iteration ended cleanly'),
    (e) => e,
  ));
  assert.equal(err.exitCode, 2);
  assert.equal(err.stderr, 'line 4\nline 5');
  assert.match(err.message, /exited with code 2; the last lines of its stderr:\nline 4\nline 5$/);
  await assert.rejects(worker.lifetime, (e) => e.code === 2 && e.stderr === 'line 4\nline 5' && /line 5$/.test(e.message));
});

test('close({ check: true }) resolves for exit 0 and rejects with the death otherwise', async () => {
  const clean = await startFixture('echo.fixture');
  assert.deepEqual(await within(10000, 'close()', clean.close({ check: true })), { exitCode: 0, signal: null });
  const failing = await startFixture('dies-loudly.fixture', ['0', '4']);
  const err = await within(10000, 'close()', failing.close({ check: true }).then(
    () => assert.fail('close() resolved'),
    (e) => e,
  ));
  assert.ok(err instanceof WorkerExitError, err.stack);
  assert.equal(err.exitCode, 4);
  // Without check, close() still resolves with the status.
  assert.deepEqual(await failing.close(), { exitCode: 4, signal: null });
});

test("stderrTail still forwards the worker's stderr to the parent's, and close({ check: true }) carries the tail", async () => {
  const { stdout, stderr } = await within(
    20000,
    'the parent',
    new Promise((resolve, reject) => {
      execFile(process.execPath, [path.join(FIXTURES, 'dying-parent.fixture')], (err, out, errOut) =>
        err ? reject(err) : resolve({ stdout: out, stderr: errOut }),
      );
    }),
  );
  assert.equal(stderr, 'line 1\nline 2\nline 3\n');
  const report = JSON.parse(stdout);
  assert.equal(report.code, 'ERR_WORKER_EXITED');
  assert.equal(report.exitCode, 1);
  assert.equal(report.stderr, 'line 2\nline 3');
});

test('stderrTail refuses a stdio that sends fd 2 elsewhere, before spawning', async () => {
  await assert.rejects(
    createWorker(process.execPath, [path.join(FIXTURES, 'echo.fixture')], { isCommand: true, stderrTail: 3, stdio: 'ignore' }),
    TypeError,
  );
  await assert.rejects(createWorker(process.execPath, [], { isCommand: true, stderrTail: -1 }), RangeError);
});

test('a worker that dies before the handshake: createWorker rejects with its stderr tail', async () => {
  const source = "process.stderr.write('importing\\nModuleNotFoundError: no module named x\\n'); process.exit(2);";
  const err = await within(
    10000,
    'createWorker to fail',
    createWorker(process.execPath, ['-e', source], { isCommand: true, stderrTail: 1, stdio: ['inherit', 'inherit', 'pipe'] }).then(
      () => assert.fail('createWorker resolved'),
      (e) => e,
    ),
  );
  assert.equal(err.code, 'ERR_WORKER_EXITED');
  assert.equal(err.exitCode, 2);
  assert.equal(err.stderr, 'ModuleNotFoundError: no module named x');
  assert.match(err.message, /before completing the handshake \(exited with code 2\); the last lines of its stderr:\nModuleNotFoundError/);
});
