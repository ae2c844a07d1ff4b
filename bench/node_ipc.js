'use strict';
// Node.js's own child_process IPC (fork, serialization: 'advanced'), as a benchmark peer.
//
//   node node_ipc.js parent WORKLOAD COUNT SIZE    prints one JSON object like py_parent.py
//   node node_ipc.js child MODE COUNT              (started by the parent)


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
    // Required here, not at the top: the child side starts without it.
    const { spawn } = require('node:child_process');
    const proc = spawn(argv[0], argv.slice(1), { stdio: 'ignore' });
    proc.on('error', reject);
    proc.on('exit', () => resolve(seconds(t0)));
  });
}

function child(mode, count) {
  process.send('ready');
  const cpu = process.cpuUsage();
  if (mode === 'count') {
    let seen = 0;
    let total = 0;
    process.on('message', (message) => {
      seen += 1;
      total += message.length;
      if (seen === count) process.send(`${count} ${total} ${hwmKib()} ${cpuSeconds(cpu)}`);
    });
  } else if (mode === 'echo') {
    process.on('message', (message) => process.send(message));
  } else {
    process.disconnect();
  }
}

function start(mode, count) {
  const { fork } = require('node:child_process');
  const proc = fork(__filename, ['child', mode, String(count)], {
    serialization: 'advanced',
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
  });
  const inbox = [];
  let waiter = null;
  proc.on('message', (message) => {
    if (waiter) {
      const w = waiter;
      waiter = null;
      w(message);
    } else inbox.push(message);
  });
  const next = () => (inbox.length ? Promise.resolve(inbox.shift()) : new Promise((r) => { waiter = r; }));
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  return { proc, next, exited };
}

async function parent(workload, count, size) {
  if (workload === 's') {
    const times = [];
    const bare = [];
    for (let i = 0; i < count; i++) {
      bare.push(await bareStart([process.execPath, '-e', '0']));
      const t0 = process.hrtime.bigint();
      const { next, exited } = start('ready', 0);
      await next();
      times.push(seconds(t0));
      await exited;
    }
    return { seconds: median(times), bare: median(bare), worker_kib: 0 };
  }
  const mode = workload === 'w2' ? 'echo' : 'count';
  const { proc, next, exited } = start(mode, count);
  await next();
  const message = Buffer.alloc(size, 0x5a);
  let workerKib = 0;
  let cpu = null;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  if (workload === 'w2') {
    for (let i = 0; i < count; i++) {
      proc.send(message);
      await next();
    }
  } else {
    for (let i = 0; i < count; i++) {
      if (workload === 'w3') await new Promise((resolve) => proc.send(message, resolve));
      else proc.send(message);
    }
    const [got, total, hwm, workerCpu] = String(await next()).split(' ').map(Number);
    if (got !== count || total !== count * size) throw new Error(`child counted ${got} / ${total}`);
    workerKib = hwm;
    cpu = cpuSeconds(cpu0) + workerCpu;
  }
  const elapsed = seconds(t0);
  proc.disconnect();
  await exited;
  return { seconds: elapsed, worker_kib: workerKib, cpu };
}

async function main() {
  const [role, ...rest] = process.argv.slice(2);
  if (role === 'child') {
    child(rest[0], Number(rest[1]));
    return;
  }
  const [workload, count, size] = rest;
  const result = await parent(workload, Number(count), Number(size));
  result.parent_kib = hwmKib();
  result.count = Number(count);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
