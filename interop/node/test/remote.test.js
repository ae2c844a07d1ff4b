'use strict';

// The `remote` option: the parent starts the Python relay as an ordinary
// worker, `<python> -m worker_process relay [--command] TARGET -- FILE ARGS`.
// A stand-in for Python records its argv and then echoes like a worker.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { createWorker, defaults } = require('../index.js');

const RECORDER = path.join(__dirname, 'fixtures', 'record-argv.fixture');

let folder;
let fakePython;

test.before(() => {
  folder = fs.mkdtempSync(path.join(os.tmpdir(), 'wp-remote-'));
  fakePython = path.join(folder, 'python-stand-in');
  fs.writeFileSync(fakePython, `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(RECORDER)} "$@"\n`, { mode: 0o755 });
});

test.after(() => {
  fs.rmSync(folder, { recursive: true, force: true });
});

/** Start a worker with `options`, check that it echoes, close it, and return the recorded argv. */
async function recordedArgv(file, args, options) {
  const record = path.join(folder, `argv-${process.hrtime.bigint()}.json`);
  const worker = await createWorker(file, args, { ...options, env: { ...process.env, RECORD_ARGV_FILE: record } });
  const replies = worker[Symbol.asyncIterator]();
  await worker.send(Buffer.from('through the relay'));
  assert.equal(String((await replies.next()).value), 'through the relay');
  assert.deepEqual(await worker.close({ check: true }), { exitCode: 0, signal: null });
  return JSON.parse(fs.readFileSync(record, 'utf8'));
}

test('remote is off by default', () => {
  assert.equal(defaults.createWorker.remote, null);
});

test('an ssh URL: <python> -m worker_process relay TARGET -- FILE ARGS, with options.python', async () => {
  const argv = await recordedArgv('jobs/train.py', ['--epochs', '3', 'two words'], {
    remote: 'ssh://alice@gpu-box:2222',
    python: fakePython,
  });
  assert.deepEqual(argv, ['-m', 'worker_process', 'relay', 'ssh://alice@gpu-box:2222', '--', 'jobs/train.py', '--epochs', '3', 'two words']);
});

test('an argv prefix is passed as a JSON array, --command with isCommand, <python> from $WORKER_PROCESS_PYTHON', async () => {
  const saved = process.env.WORKER_PROCESS_PYTHON;
  process.env.WORKER_PROCESS_PYTHON = fakePython;
  try {
    const argv = await recordedArgv('node', ['worker.js'], { remote: ['docker', 'exec', '-i', 'box'], isCommand: true });
    assert.deepEqual(argv, ['-m', 'worker_process', 'relay', '--command', '["docker","exec","-i","box"]', '--', 'node', 'worker.js']);
  } finally {
    if (saved === undefined) delete process.env.WORKER_PROCESS_PYTHON;
    else process.env.WORKER_PROCESS_PYTHON = saved;
  }
});

test('a .js file is not run under this Node.js when it is remote: the relay gets it as it is', async () => {
  const argv = await recordedArgv('/srv/app/worker.js', [], { remote: ['kubectl', 'exec', '-i', 'pod', '--'], python: fakePython });
  assert.deepEqual(argv, ['-m', 'worker_process', 'relay', '["kubectl","exec","-i","pod","--"]', '--', '/srv/app/worker.js']);
});

test('a bad remote is refused before anything is spawned', async () => {
  for (const remote of ['gpu-box', 'ssh://', [], ['docker', 3], 42]) {
    await assert.rejects(createWorker('job.py', [], { remote, python: fakePython }), TypeError, JSON.stringify(remote));
  }
});

test('a pool spans hosts with remotes: each worker started takes the next target in turn', async () => {
  const { createPool } = require('../index.js');
  const record = path.join(folder, `argv-pool-${process.hrtime.bigint()}.json`);
  const echo = path.join(__dirname, 'fixtures', 'echo.fixture');
  const pool = await createPool(process.execPath, [echo], {
    isCommand: true,
    size: 2,
    raw: true,
    python: fakePython,
    remotes: [null, 'ssh://box'],
    env: { ...process.env, RECORD_ARGV_FILE: record },
  });
  try {
    const replies = await Promise.all([1, 2, 3, 4].map((i) => pool.submit(Buffer.from(`job ${i}`))));
    assert.deepEqual(replies.map(String), ['job 1', 'job 2', 'job 3', 'job 4']);
    // The second worker went through the relay; the first ran here.
    assert.deepEqual(JSON.parse(fs.readFileSync(record, 'utf8')),
      ['-m', 'worker_process', 'relay', '--command', 'ssh://box', '--', process.execPath, echo]);
  } finally {
    await pool.close();
  }
  await assert.rejects(() => createPool('w.js', [], { remotes: [] }), /non-empty array/);
  await assert.rejects(() => createPool('w.js', [], { remotes: [null], remote: 'ssh://a' }), /not both/);
});
