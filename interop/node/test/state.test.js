'use strict';

// The channel state tables (lib/state.js): their shape and the rules the
// transports rely on.

const test = require('node:test');
const assert = require('node:assert/strict');

const { STATES, RECEIVING, SENDING, RECEIVE_OUTCOME, SEND_OUTCOME, ChannelState } = require('../lib/state.js');

test('every state of each table leads only to states of the same table', () => {
  for (const [table, outcomes] of [[RECEIVING, RECEIVE_OUTCOME], [SENDING, SEND_OUTCOME]]) {
    for (const [state, row] of Object.entries(table)) {
      assert.ok(state in STATES, state);
      assert.ok(state in outcomes, `${state} has an outcome`);
      for (const next of Object.values(row)) assert.ok(next in table, `${state} -> ${next}`);
    }
  }
  assert.deepEqual(Object.keys(RECEIVING).sort(), ['BROKEN', 'CLOSED', 'ENDED', 'HANDSHAKE', 'OPEN']);
  assert.deepEqual(Object.keys(SENDING).sort(), Object.keys(STATES).sort());
});

test('ENDED, BROKEN and CLOSED are final in both directions', () => {
  for (const table of [RECEIVING, SENDING]) {
    for (const state of ['ENDED', 'BROKEN', 'CLOSED']) assert.deepEqual(Object.keys(table[state]), [], state);
  }
});

test('the handshake opens both directions; before it, an end is a break', () => {
  const state = new ChannelState();
  assert.equal(state.sendOutcome, 'queue');
  assert.equal(state.receiveOutcome, 'wait');
  const early = new ChannelState();
  early.receive('end', new Error('truncated'));
  assert.equal(early.receiving, 'BROKEN');
  assert.equal(early.handshaken, false);
  assert.equal(state.receive('handshake'), true);
  assert.equal(state.handshaken, true);
  assert.equal(state.receiving, 'OPEN');
  assert.equal(state.sending, 'OPEN');
});

test('the first failure sticks and later reports change nothing', () => {
  const state = new ChannelState();
  state.receive('handshake');
  const first = new Error('first');
  assert.equal(state.receive('fail', first), true);
  assert.equal(state.receive('end'), false);
  assert.equal(state.receive('fail', new Error('second')), false);
  state.close();
  assert.equal(state.receiving, 'BROKEN');
  assert.equal(state.receiveError, first);
  assert.equal(state.receiveOutcome, 'error');
  assert.equal(state.receiveDone, true);
});

test('sending: finish, then finished; send is refused from FINISHING on', () => {
  const state = new ChannelState();
  state.receive('handshake');
  assert.equal(state.send('finished'), false, 'finished before finish');
  assert.equal(state.send('finish'), true);
  assert.equal(state.sendOutcome, 'closed');
  assert.equal(state.send('finish'), false);
  assert.equal(state.send('finished'), true);
  assert.equal(state.sending, 'ENDED');
  const broken = new ChannelState();
  broken.receive('handshake');
  const err = new Error('EPIPE');
  broken.send('fail', err);
  assert.equal(broken.sendOutcome, 'error');
  assert.equal(broken.sendError, err);
});

test('closing an open channel closes both directions; an ended one stays ended', () => {
  const state = new ChannelState();
  state.receive('handshake');
  state.receive('end');
  state.close();
  assert.equal(state.receiving, 'ENDED');
  assert.equal(state.sending, 'CLOSED');
  assert.equal(state.receiveOutcome, 'done');
});
