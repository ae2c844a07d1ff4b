'use strict';

// The channel's state, per direction, as explicit tables (no I/O here).
//
// Each direction is in one of the states below. The transports (parent.js,
// worker.js) report what happened as events; the tables say where each event
// leads. An event that a state does not list leaves it unchanged: late or
// repeated reports (an error after the end, a second end) change nothing, and
// BROKEN is sticky, so the first failure is the one every later call reports.
//
//   HANDSHAKE  the peer's handshake byte has not been accepted yet
//   OPEN       frames flow
//   FINISHING  (sending) our end of stream is requested: queued frames are
//              flushed, then the write side is shut down
//   ENDED      receiving: the peer ended its stream at a frame boundary;
//              sending: our end of stream has been written
//   BROKEN     the direction failed (protocol error, socket error, the peer
//              is gone); `error` says why
//   CLOSED     we released the socket while the direction was still open

const HANDSHAKE = 'HANDSHAKE';
const OPEN = 'OPEN';
const FINISHING = 'FINISHING';
const ENDED = 'ENDED';
const BROKEN = 'BROKEN';
const CLOSED = 'CLOSED';

const STATES = Object.freeze({ HANDSHAKE, OPEN, FINISHING, ENDED, BROKEN, CLOSED });

// Receiving events: handshake (the peer's byte was accepted), end (clean end
// of stream), fail (bad bytes, a truncated stream, a socket error), close.
const RECEIVING = Object.freeze({
  HANDSHAKE: Object.freeze({ handshake: OPEN, end: BROKEN, fail: BROKEN, close: CLOSED }),
  OPEN: Object.freeze({ end: ENDED, fail: BROKEN, close: CLOSED }),
  ENDED: Object.freeze({}),
  BROKEN: Object.freeze({}),
  CLOSED: Object.freeze({}),
});

// Sending events: handshake, finish (end of stream requested), finished (it
// was written), fail (a write failed), close.
const SENDING = Object.freeze({
  HANDSHAKE: Object.freeze({ handshake: OPEN, finish: FINISHING, fail: BROKEN, close: CLOSED }),
  OPEN: Object.freeze({ finish: FINISHING, fail: BROKEN, close: CLOSED }),
  FINISHING: Object.freeze({ finished: ENDED, fail: BROKEN, close: CLOSED }),
  ENDED: Object.freeze({}),
  BROKEN: Object.freeze({}),
  CLOSED: Object.freeze({}),
});

/** What a receive (next message) gets in each state once the inbox is empty. */
const RECEIVE_OUTCOME = Object.freeze({
  HANDSHAKE: 'wait',
  OPEN: 'wait',
  ENDED: 'done',
  BROKEN: 'error',
  CLOSED: 'done',
});

/** What send() gets in each state. */
const SEND_OUTCOME = Object.freeze({
  HANDSHAKE: 'queue',
  OPEN: 'queue',
  FINISHING: 'closed',
  ENDED: 'closed',
  BROKEN: 'error',
  CLOSED: 'closed',
});

class ChannelState {
  constructor() {
    this.receiving = HANDSHAKE;
    this.sending = HANDSHAKE;
    /** Why receiving broke, or null. */
    this.receiveError = null;
    /** Why sending broke, or null. */
    this.sendError = null;
    this.handshaken = false;
  }

  /** Apply a receiving event; returns whether the state changed. */
  receive(event, err = null) {
    const next = RECEIVING[this.receiving][event];
    if (next === undefined) return false;
    this.receiving = next;
    if (event === 'handshake') {
      this.handshaken = true;
      this.send('handshake');
    }
    if (next === BROKEN) this.receiveError = err;
    return true;
  }

  /** Apply a sending event; returns whether the state changed. */
  send(event, err = null) {
    const next = SENDING[this.sending][event];
    if (next === undefined) return false;
    this.sending = next;
    if (next === BROKEN) this.sendError = err;
    return true;
  }

  /** Both directions: we release the socket. */
  close() {
    this.receive('close');
    this.send('close');
  }

  /** The peer's stream is over (ended, broken or released). */
  get receiveDone() {
    return RECEIVE_OUTCOME[this.receiving] !== 'wait';
  }

  /** 'wait', 'done' or 'error': what a receive gets once the inbox is empty. */
  get receiveOutcome() {
    return RECEIVE_OUTCOME[this.receiving];
  }

  /** 'queue', 'closed' or 'error': what send() does. */
  get sendOutcome() {
    return SEND_OUTCOME[this.sending];
  }
}

module.exports = { STATES, RECEIVING, SENDING, RECEIVE_OUTCOME, SEND_OUTCOME, ChannelState };
