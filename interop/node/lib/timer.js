'use strict';

// Timers and duration options.

const MAX_TIMER = 0x7fffffff;

/** Timer that accepts any duration, including ones longer than setTimeout allows. */
function startTimer(ms, fn, { unref = false } = {}) {
  const timer = { handle: null };
  const arm = (remaining) => {
    const step = Math.min(remaining, MAX_TIMER);
    timer.handle = setTimeout(() => {
      if (remaining > step) arm(remaining - step);
      else {
        timer.handle = null;
        fn();
      }
    }, step);
    if (unref) timer.handle.unref();
  };
  arm(ms);
  return timer;
}

function stopTimer(timer) {
  if (timer && timer.handle) {
    clearTimeout(timer.handle);
    timer.handle = null;
  }
  return null;
}

/** Duration option where 0, Infinity and null all mean "no limit". */
function limitOption(name, value) {
  if (value === null || value === 0 || value === Infinity) return null;
  if (typeof value !== 'number' || Number.isNaN(value) || value < 0) {
    throw new RangeError(`${name} must be a non-negative number of milliseconds, 0, Infinity or null; got ${String(value)}`);
  }
  return value;
}

module.exports = { startTimer, stopTimer, limitOption };
