'use strict';
// Pool throughput, Node.js: N jobs of SIZE bytes (default 2,000 x 128 KiB), each the SHA-256
// of the chunk's zlib deflate, on this project's createPool() and on piscina and workerpool
// (installed in interop/node_modules from interop/package-lock.json), in one run.
//
//   node bench/node_pool.js                 3 runs of every peer, prints the table and ratios
//   node bench/node_pool.js --smoke         every peer once, 100 jobs of 16 KiB
//   node bench/node_pool.js --runs 5 --jobs 2000 --size 131072 --workers 2 --only wp,piscina
//
// Every measurement runs in a fresh Node.js process (so that peak RSS is its own); runs
// rotate the order of the peers and the table shows medians. Each pool first does 2 jobs
// per worker (start-up and warm-up, reported apart), then the timed part sends every job
// with at most 4 per worker in flight and ends when the last result is in. The results'
// digest is compared across peers, so they all did the same work.

const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const os = require('node:os');
const path = require('node:path');
const { createRequire } = require('node:module');

const ROOT = path.join(__dirname, '..');
const WORKERS = path.join(__dirname, 'workers');
const interopRequire = createRequire(path.join(ROOT, 'interop', 'package.json'));

const PEERS = {
  wp: 'worker-process createPool (processes; concurrency 2, the default)',
  'wp-c1': 'worker-process createPool, concurrency 1 (processes)',
  'workerpool-process': 'workerpool, workerType process (fork, advanced serialization)',
  piscina: 'piscina (worker_threads; it has no process mode)',
  'workerpool-thread': 'workerpool, workerType thread',
};

/** The chunks jobs are made of: 16 distinct compressible chunks, reused round-robin. */
function makeChunks(size) {
  const chunks = [];
  let state = 0x9e3779b9;
  for (let c = 0; c < 16; c++) {
    const chunk = Buffer.allocUnsafe(size);
    for (let i = 0; i < size; i++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      chunk[i] = 0x61 + (state & 0x0f); // 16 letters: deflate halves it
    }
    chunks.push(chunk);
  }
  return chunks;
}

/** Run `jobs` jobs through `submit` with at most `window` in flight; digest of all results in order. */
async function runJobs(submit, chunks, jobs, window) {
  const results = new Array(jobs);
  let next = 0;
  async function lane() {
    while (next < jobs) {
      const i = next++;
      const out = await submit(chunks[i % chunks.length]);
      results[i] = Buffer.from(out.buffer, out.byteOffset, out.byteLength);
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, jobs) }, lane));
  return crypto.createHash('sha256').update(Buffer.concat(results)).digest('hex').slice(0, 16);
}

async function openPeer(peer, workers) {
  switch (peer) {
    case 'wp':
    case 'wp-c1': {
      const { createPool } = require(path.join(ROOT, 'interop', 'node', 'index.js'));
      const pool = await createPool(process.execPath, [path.join(WORKERS, 'node_pool_job.js')], {
        isCommand: true,
        size: workers,
        concurrency: peer === 'wp-c1' ? 1 : 2,
      });
      return { submit: (data) => pool.submit(data), close: () => pool.close() };
    }
    case 'piscina': {
      const { Piscina } = interopRequire('piscina');
      const pool = new Piscina({
        filename: path.join(WORKERS, 'piscina_job.js'),
        minThreads: workers,
        maxThreads: workers,
      });
      return { submit: (data) => pool.run(data), close: () => pool.destroy() };
    }
    case 'workerpool-thread':
    case 'workerpool-process': {
      const workerpool = interopRequire('workerpool');
      const type = peer.split('-')[1];
      const pool = workerpool.pool(path.join(WORKERS, 'workerpool_job.js'), {
        workerType: type,
        minWorkers: workers,
        maxWorkers: workers,
        forkOpts: { serialization: 'advanced' },
      });
      return { submit: (data) => pool.exec('job', [data]), close: () => pool.terminate() };
    }
    default:
      throw new Error(`unknown peer ${peer}`);
  }
}

/** One measurement, in this process: prints a JSON line. */
async function measure(peer, jobs, size, workers) {
  const chunks = makeChunks(size);
  const t0 = process.hrtime.bigint();
  const pool = await openPeer(peer, workers);
  await runJobs(pool.submit, chunks, workers * 2, workers);
  const t1 = process.hrtime.bigint();
  const digest = await runJobs(pool.submit, chunks, jobs, workers * 4);
  const t2 = process.hrtime.bigint();
  await pool.close();
  process.stdout.write(
    `${JSON.stringify({
      startup: Number(t1 - t0) / 1e9,
      seconds: Number(t2 - t1) / 1e9,
      digest,
      rssMiB: process.resourceUsage().maxRSS / 1024,
    })}\n`,
  );
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function option(argv, name, fallback) {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
}

function main() {
  const argv = process.argv.slice(2);
  if (argv[0] === 'measure') {
    measure(argv[1], Number(argv[2]), Number(argv[3]), Number(argv[4])).catch((err) => {
      console.error(err);
      process.exit(1);
    });
    return;
  }
  const smoke = argv.includes('--smoke');
  const runs = Number(option(argv, '--runs', smoke ? 1 : 3));
  const jobs = Number(option(argv, '--jobs', smoke ? 100 : 2000));
  const size = Number(option(argv, '--size', smoke ? 16384 : 131072));
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const workers = Number(option(argv, '--workers', cpus));
  const only = option(argv, '--only', null);
  const peers = only ? only.split(',') : Object.keys(PEERS);
  for (const peer of peers) if (!PEERS[peer]) throw new Error(`unknown peer ${peer}; known: ${Object.keys(PEERS)}`);

  console.log(
    `${jobs} jobs x ${size} B (SHA-256 of zlib deflate), ${workers} workers, ${runs} run(s); ` +
      `node ${process.version}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
  );
  const results = Object.fromEntries(peers.map((p) => [p, []]));
  const failures = {};
  for (let run = 0; run < runs; run++) {
    const order = peers.map((_, k) => peers[(k + run) % peers.length]);
    for (const peer of order) {
      if (failures[peer]) continue;
      const child = spawnSync(process.execPath, [__filename, 'measure', peer, String(jobs), String(size), String(workers)], {
        encoding: 'utf8',
        timeout: 600000,
      });
      const line = (child.stdout || '').trim().split('\n').pop();
      if (child.status !== 0 || !line) {
        failures[peer] = (child.stderr || String(child.error || child.signal)).trim().split('\n').slice(-3).join(' | ');
        continue;
      }
      results[peer].push(JSON.parse(line));
    }
  }
  const digests = new Set(Object.values(results).flatMap((rs) => rs.map((r) => r.digest)));
  const wpSeconds = results.wp && results.wp.length ? median(results.wp.map((r) => r.seconds)) : null;
  console.log('');
  console.log('| peer | jobs/s | time (s) | start-up + warm-up (s) | parent peak RSS (MiB) | worker-process speed-up |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const peer of peers) {
    if (failures[peer]) {
      console.log(`| ${PEERS[peer]} | failed: ${failures[peer]} | | | | |`);
      continue;
    }
    const rs = results[peer];
    const seconds = median(rs.map((r) => r.seconds));
    const ratio = wpSeconds ? `${(seconds / wpSeconds).toFixed(2)}x` : '-';
    console.log(
      `| ${PEERS[peer]} | ${Math.round(jobs / seconds)} | ${seconds.toFixed(3)} | ${median(rs.map((r) => r.startup)).toFixed(3)} | ` +
        `${median(rs.map((r) => r.rssMiB)).toFixed(0)} | ${ratio} |`,
    );
  }
  console.log('');
  console.log('speed-up: the peer\'s time / worker-process createPool\'s time (above 1: worker-process is faster)');
  if (digests.size > 1) {
    console.log(`results differ between peers: ${[...digests].join(', ')}`);
    process.exitCode = 1;
  }
  if (Object.keys(failures).length > 0) process.exitCode = 1;
}

main();
