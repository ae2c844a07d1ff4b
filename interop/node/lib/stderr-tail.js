'use strict';

// The last lines of a worker's stderr, for the error that reports its death.

const { StringDecoder } = require('node:string_decoder');

// A line longer than this is cut: the tail is for a message, not a log.
const MAX_LINE = 4096;

class StderrTail {
  /**
   * Keep the last `lines` lines read from `stream`; copy every chunk to
   * `forward` (a writable, or null) as it comes.
   */
  constructor(stream, lines, forward) {
    this._limit = lines;
    this._lines = [];
    this._partial = '';
    this._decoder = new StringDecoder('utf8');
    this.done = false;
    this._waiters = [];
    stream.on('data', (chunk) => {
      if (forward) forward.write(chunk);
      this._add(this._decoder.write(chunk));
    });
    const end = () => {
      if (this.done) return;
      this._add(this._decoder.end());
      this.done = true;
      for (const resolve of this._waiters.splice(0)) resolve();
    };
    stream.on('end', end);
    stream.on('close', end);
    stream.on('error', end);
  }

  _add(text) {
    if (!text) return;
    const parts = (this._partial + text).split('\n');
    this._partial = parts.pop().slice(-MAX_LINE);
    for (const line of parts) this._lines.push(line.slice(-MAX_LINE));
    if (this._lines.length > this._limit) this._lines.splice(0, this._lines.length - this._limit);
  }

  /** The kept lines, oldest first, joined with newlines (an unfinished last line included). */
  text() {
    const lines = this._partial ? [...this._lines, this._partial] : this._lines;
    return lines.slice(-this._limit).join('\n');
  }

  /** Resolves once the stream has ended (or failed). */
  ended() {
    if (this.done) return Promise.resolve();
    return new Promise((resolve) => this._waiters.push(resolve));
  }
}

module.exports = { StderrTail };
