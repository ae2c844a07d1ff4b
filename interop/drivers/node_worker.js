'use strict';
// A Node.js worker for the cross-language tests. Usage: node node_worker.js MODE [ARGS...]
//   echo           echo every message; at the parent's end of stream, finish (exit 0)
//   burst N CODE   send N numbered messages, finish, then process.exit(CODE) at once
//   exit CODE      send "ready", finish, then exit with CODE ("kill": SIGKILL itself)
//   msgpack        answer each msgpack value v with msgpack {lang: "node", echo: v}
//   idle           print "PID false" on stdout, then echo until the end of stream
const { connect } = require('../node');

async function main() {
  const [mode, ...args] = process.argv.slice(2);
  const conn = await connect();
  switch (mode) {
    case 'echo':
    case 'idle':
      if (mode === 'idle') process.stdout.write(`${process.pid} false\n`);
      for await (const message of conn) await conn.send(message);
      await conn.finish();
      return;
    case 'burst': {
      const count = Number(args[0]);
      for (let i = 0; i < count; i++) {
        const item = Buffer.alloc(256);
        for (let j = 0; j < 256; j += 4) item.writeUInt32BE(i, j);
        await conn.send(item);
      }
      await conn.finish();
      process.exit(Number(args[1]));
      return;
    }
    case 'exit':
      await conn.send(Buffer.from('ready'));
      await conn.finish();
      if (args[0] === 'kill') process.kill(process.pid, 'SIGKILL');
      process.exit(Number(args[0]));
      return;
    case 'msgpack': {
      const { encode, decode } = require('@msgpack/msgpack');
      for await (const message of conn) {
        await conn.send(Buffer.from(encode({ lang: 'node', echo: decode(message) })));
      }
      await conn.finish();
      return;
    }
    default:
      throw new Error(`unknown mode ${mode}`);
  }
}

main().catch((err) => {
  process.stderr.write(`node_worker: ${err.stack || err}\n`);
  process.exit(1);
});
