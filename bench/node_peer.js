'use strict';
// Benchmark peer on this project's Node.js implementation (interop/node).
//
//   node node_peer.js worker MODE [COUNT]          the worker side (modes of workers/wp_sync.py)
//   node node_peer.js parent WORKLOAD COUNT SIZE PYTHON WORKER.py
//                                                  a Node.js parent of a Python worker; prints
//                                                  one JSON object like py_parent.py

const path = require('node:path');
const wp = require(path.join(__dirname, '..', 'interop', 'node', 'index.js'));

const hwmKib = () => process.resourceUsage().maxRSS;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const seconds = (t0) => Number(process.hrtime.bigint() - t0) / 1e9;
const cpuSeconds = (since) => {
  const used = process.cpuUsage(since);
  return (used.user + used.system) / 1e6;
};

// Seconds from spawning a bare interpreter to its exit (start-up reference).
function bareStart(argv) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    // Required here, not at the top: the worker side starts without it.
    const { spawn } = require('node:child_process');
    const proc = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    proc.on('error', reject);
    proc.on('exit', () => resolve(seconds(t0)));
  });
}

async function worker(mode, count) {
  const conn = await wp.connect();
  const cpu = process.cpuUsage();
  if (mode === 'count') {
    let seen = 0;
    let total = 0;
    await new Promise((resolve) => {
      conn.onmessage = (message) => {
        seen += 1;
        total += message.length;
        if (seen === count) resolve();
      };
    });
    await conn.send(Buffer.from(`${count} ${total} ${hwmKib()} ${cpuSeconds(cpu)}`));
    await conn.finish();
  } else if (mode === 'echo') {
    conn.onmessage = (message) => {
      conn.send(message);
    };
  } else {
    conn.onmessage = () => {};
  }
}

function checkReport(reply, count, size) {
  const [got, total, hwm, cpu] = reply.toString().split(' ').map(Number);
  if (got !== count || total !== count * size) throw new Error(`worker counted ${got} / ${total}`);
  return [hwm, cpu];
}

async function parent(workload, count, size, python, file) {
  const options = { python, maxDuration: null, handshakeTimeout: 60000 };
  if (workload === 's') {
    const times = [];
    const bare = [];
    for (let i = 0; i < count; i++) {
      bare.push(await bareStart([python, '-c', 'pass']));
      const t0 = process.hrtime.bigint();
      const w = await wp.createWorker(file, ['idle'], options);
      times.push(seconds(t0));
      await w.close();
    }
    return { seconds: median(times), bare: median(bare), worker_kib: 0 };
  }
  const mode = workload === 'w2' ? 'echo' : 'count';
  const w = await wp.createWorker(file, [mode, String(count)], options);
  const incoming = w[Symbol.asyncIterator]();
  const message = Buffer.alloc(size, 0x5a);
  let workerKib = 0;
  let cpu = null;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  if (workload === 'w2') {
    for (let i = 0; i < count; i++) {
      w.send(message);
      await incoming.next();
    }
  } else {
    for (let i = 0; i < count; i++) {
      if (workload === 'w3') await w.send(message);
      else w.send(message);
    }
    const [hwm, workerCpu] = checkReport((await incoming.next()).value, count, size);
    workerKib = hwm;
    cpu = cpuSeconds(cpu0) + workerCpu;
  }
  const elapsed = seconds(t0);
  await w.close();
  return { seconds: elapsed, worker_kib: workerKib, cpu };
}

async function main() {
  const [role, ...rest] = process.argv.slice(2);
  if (role === 'worker') {
    await worker(rest[0], Number(rest[1] || 0));
    return;
  }
  const [workload, count, size, python, file] = rest;
  const result = await parent(workload, Number(count), Number(size), python, file);
  result.parent_kib = hwmKib();
  result.count = Number(count);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
