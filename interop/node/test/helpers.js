'use strict';

// What the live tests share: starting fixtures under this Node.js, killing
// what a failed test left running, and bounded waits. Not a test file itself
// (Node.js 18/20 load it as one, and find no test in it).

const path = require('node:path');

const { createWorker } = require('../index.js');

const FIXTURES = path.join(__dirname, 'fixtures');
const fixture = (name) => path.join(FIXTURES, name);

const running = new Set();

/** Kill `worker` in killRunning() unless it has ended by then; returns it. */
function track(worker) {
  running.add(worker);
  worker.lifetime.then(
    () => running.delete(worker),
    () => running.delete(worker),
  );
  return worker;
}

/**
 * Start a fixture as a worker. Fixtures carry a non-.js extension so that the
 * test runner does not take them for test files; they run under this Node.js,
 * with options.execArgv (Node.js flags) before the script. Call killRunning() from an afterEach hook.
 */
async function startFixture(name, args = [], options = {}) {
  const { execArgv = [], ...rest } = options;
  return track(await createWorker(process.execPath, [...execArgv, fixture(name), ...args], { isCommand: true, ...rest }));
}

/** Kill every tracked worker still running: a failed test must not leave workers behind. */
function killRunning() {
  for (const worker of running) worker.kill('SIGKILL');
}

/** Race `promise` against a deadline; the rejection says what was awaited. */
function within(ms, what, promise) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

module.exports = { FIXTURES, fixture, track, startFixture, killRunning, within };
