'use strict';

// Reading what the worker wrote after Node.js decided to destroy the socket.
//
// When a write fails (EPIPE: the worker released its socket), net.Socket
// destroys itself at once: net.Socket forces `autoDestroy`, and a failed write
// goes through errorOrDestroy() to destroy(), which closes the descriptor
// synchronously, before any 'error' or 'close' listener runs. Whatever the
// worker wrote and we had not read yet (reading paused by back-pressure, or
// its bytes not yet seen by the event loop) would be lost with the
// descriptor. A write fails with EPIPE only once the worker's socket is
// released, so at that moment all of it is in our receive buffer, up to the
// end of stream.
//
// Node.js has no public API for either step we need, so this module, and only
// it, uses two non-public details:
// - the stream implementers' `_destroy(err, callback)` hook, wrapped on this
//   one socket instance (net.Socket is created by child_process, so it cannot
//   be a subclass), to run before the descriptor is closed;
// - `socket._handle.fd`, the descriptor, read with fs.readSync (it is
//   non-blocking: EAGAIN means the worker's side is still open).
// Without them (a future Node.js that renames them) nothing breaks: the
// leftover is simply not read, as if Node.js had no such hook.

const fs = require('node:fs');

const LEFTOVER_BUFFER_SIZE = 64 * 1024;

/** Call `beforeClose()` when `socket` is destroyed because of an error, before its descriptor is closed. */
function beforeErrorDestroy(socket, beforeClose) {
  const destroy = socket._destroy;
  if (typeof destroy !== 'function') return;
  socket._destroy = function destroyAfterReadingLeftover(err, callback) {
    if (err) beforeClose();
    return destroy.call(this, err, callback);
  };
}

/**
 * Read the socket's descriptor synchronously until the end of stream or
 * until nothing more is available, feeding `sink.data(chunk)` (the chunk's
 * buffer is reused: copy what you keep) and `sink.end()`; stops early once
 * `sink.done()` is true.
 */
function readLeftover(socket, sink) {
  const handle = socket._handle;
  const fd = handle ? handle.fd : -1;
  if (!(Number.isInteger(fd) && fd >= 0)) return;
  const buffer = Buffer.allocUnsafe(LEFTOVER_BUFFER_SIZE);
  while (!sink.done()) {
    let n;
    try {
      n = fs.readSync(fd, buffer, 0, buffer.length, null);
    } catch (err) {
      // AF_UNIX reports ECONNRESET instead of EOF when the worker closed its
      // end with unread data; EAGAIN: the worker's side is still open.
      if (err.code === 'ECONNRESET') n = 0;
      else return;
    }
    if (n === 0) {
      sink.end();
      return;
    }
    sink.data(buffer.subarray(0, n));
  }
}

module.exports = { beforeErrorDestroy, readLeftover };
