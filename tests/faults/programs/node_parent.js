'use strict';
// A Node.js parent (interop/node createWorker()) facing a worker, reporting the outcome as
// one JSON line. Usage: node node_parent.js SPEC_JSON, where SPEC is
//   {file, args?, options?, closeFirst?: {timeout}, command?: {after, hex}, close?: {timeout}}
// It iterates the worker's messages until the end or an error (after `command.after`
// messages it sends `command.hex`), then optionally closes, then awaits lifetime.

const path = require('node:path');
const { createWorker } = require(path.resolve(__dirname, '..', '..', '..', 'interop', 'node'));

function describe(err) {
  const out = { type: err.constructor.name, message: err.message };
  for (const key of ['code', 'expected', 'got', 'length', 'limit', 'stage', 'missing', 'exitCode', 'signal']) {
    if (err[key] !== undefined) out[key] = err[key];
  }
  return out;
}

async function main(spec) {
  const out = { event: 'outcome' };
  const started = Date.now();
  let worker;
  try {
    worker = await createWorker(spec.file, spec.args || [], spec.options || {});
  } catch (err) {
    out.createError = describe(err);
    out.ms = Date.now() - started;
    return out;
  }
  out.pid = worker.pid;
  if (spec.closeFirst) {
    const t = Date.now();
    out.closed = await worker.close(spec.closeFirst);
    out.closeMs = Date.now() - t;
  }
  const messages = [];
  try {
    for await (const m of worker) {
      messages.push(m.toString('hex'));
      if (spec.command && messages.length === spec.command.after) {
        await worker.send(Buffer.from(spec.command.hex, 'hex'));
      }
    }
    out.end = 'end';
  } catch (err) {
    out.end = describe(err);
  }
  out.messages = messages;
  if (spec.close) out.closed = await worker.close(spec.close);
  try {
    await worker.lifetime;
    out.lifetime = 'ok';
  } catch (err) {
    out.lifetime = describe(err);
  }
  out.ms = Date.now() - started;
  return out;
}

main(JSON.parse(process.argv[2])).then(
  (out) => process.stdout.write(`${JSON.stringify(out)}\n`),
  (err) => {
    process.stderr.write(`node_parent: ${err.stack}\n`);
    process.exit(2);
  },
);
