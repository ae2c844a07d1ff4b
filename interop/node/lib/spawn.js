'use strict';

// Turning createWorker's file, args and options into a spawned child: the
// interpreter chosen by extension, fds 0-2 as asked and the channel on fd 3,
// and no other inherited descriptor.

const fs = require('node:fs');
const path = require('node:path');
const { fileURLToPath } = require('node:url');

const { PROTOCOL } = require('./codec');

const JS_EXTENSIONS = new Set(['.js', '.mjs', '.cjs']);

function pythonCommand(python) {
  return python || process.env.WORKER_PROCESS_PYTHON || 'python3';
}

/**
 * The relay's TARGET argument for the `remote` option: an ssh URL as it is,
 * an argv prefix as a JSON array.
 *
 * Throws TypeError for anything else.
 */
function remoteTarget(remote) {
  if (typeof remote === 'string' && remote.startsWith('ssh://') && remote.length > 'ssh://'.length) return remote;
  if (Array.isArray(remote) && remote.length > 0 && remote.every((word) => typeof word === 'string' && word.length > 0)) {
    return JSON.stringify(remote);
  }
  throw new TypeError(
    "remote must be 'ssh://[user@]host[:port]' or a non-empty array of strings " +
      `(an argv prefix such as ['docker', 'exec', '-i', 'box']); got ${JSON.stringify(remote)}`,
  );
}

/**
 * A remote worker is an ordinary local worker: the Python relay, which runs
 * `file` on the target and passes every byte through (see the main README,
 * "Remote workers"). `file` and `args` are resolved on the remote host.
 */
function relayCommand(remote, file, args, isCommand, python) {
  const flag = isCommand ? ['--command'] : [];
  return [pythonCommand(python), ['-m', 'worker_process', 'relay', ...flag, remoteTarget(remote), '--', file, ...args]];
}

function resolveCommand(file, args, isCommand, python) {
  if (isCommand) return [file, args];
  const ext = path.extname(file).toLowerCase();
  if (JS_EXTENSIONS.has(ext)) return [process.execPath, [file, ...args]];
  if (ext === '.py') {
    return [pythonCommand(python), [file, ...args]];
  }
  return [file, args];
}

// O_CLOEXEC in the octal `flags:` line of /proc/self/fdinfo/<fd> (Linux).
const O_CLOEXEC = 0o2000000;
const SH = '/bin/sh';
const BASH = '/bin/bash';

/**
 * Descriptors above 3 that a child of this process would inherit: open
 * without close-on-exec. Node.js opens its own descriptors close-on-exec, so
 * these were inherited from this process's parent or opened by native code.
 */
function inheritableDescriptors() {
  let names;
  try {
    names = fs.readdirSync('/proc/self/fd');
  } catch {
    return []; // no /proc
  }
  const fds = [];
  for (const name of names) {
    const fd = Number(name);
    if (!(fd > PROTOCOL.CHANNEL_FD)) continue;
    let info;
    try {
      info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1');
    } catch {
      continue; // closed meanwhile (the directory listing's own descriptor)
    }
    const flags = /^flags:\s*([0-7]+)$/m.exec(info);
    if (flags && (parseInt(flags[1], 8) & O_CLOEXEC) === 0) fds.push(fd);
  }
  return fds.sort((a, b) => a - b);
}

function isExecutableFile(file) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Whether spawn() would find `command`, as it looks it up (PATH of the child's environment). */
function programExists(command, spawnOptions) {
  let cwd = spawnOptions.cwd === undefined || spawnOptions.cwd === null ? process.cwd() : spawnOptions.cwd;
  if (cwd instanceof URL) cwd = fileURLToPath(cwd);
  if (typeof cwd !== 'string') return false;
  if (command.includes('/')) return isExecutableFile(path.resolve(cwd, command));
  const env = spawnOptions.env || process.env;
  if (typeof env.PATH !== 'string') return false;
  return env.PATH.split(':').some((dir) => isExecutableFile(path.resolve(cwd, dir || '.', command)));
}

/**
 * libuv passes every descriptor without close-on-exec on to a child, and
 * Node.js cannot set the flag. When this process has such descriptors, start
 * the worker through a shell that closes them and then execs the program (same
 * process, so the pid and signals are the worker's). Returns the [command,
 * args] to spawn. dash only parses single-digit descriptors in redirections,
 * so descriptors above 9 need bash; without bash they stay open.
 */
function closeInheritedDescriptors(command, args, spawnOptions) {
  if (process.platform !== 'linux' || spawnOptions.shell || spawnOptions.argv0 !== undefined) return [command, args];
  let fds = inheritableDescriptors();
  if (fds.length === 0) return [command, args];
  let shell = SH;
  if (fds.some((fd) => fd > 9)) {
    if (isExecutableFile(BASH)) shell = BASH;
    else fds = fds.filter((fd) => fd <= 9);
  }
  // A program that cannot be found must fail the spawn (ENOENT), not exit 127.
  if (fds.length === 0 || !programExists(command, spawnOptions)) return [command, args];
  const script = `exec "$@" ${fds.map((fd) => `${fd}>&-`).join(' ')}`;
  // --posix: a non-interactive bash in POSIX mode reads no startup file ($BASH_ENV).
  const shellArgs = shell === BASH ? ['--posix', '-c', script] : ['-c', script];
  return [shell, [...shellArgs, 'worker-process', command, ...args]];
}

function buildStdio(stdio) {
  if (stdio === undefined || stdio === null) stdio = 'inherit';
  if (typeof stdio === 'string') return [stdio, stdio, stdio, 'pipe'];
  if (Array.isArray(stdio)) {
    if (stdio.length > 3) {
      throw new TypeError('options.stdio may only describe file descriptors 0-2; fd 3 is the channel');
    }
    const out = [];
    for (let i = 0; i < 3; i++) out.push(stdio[i] === undefined || stdio[i] === null ? 'inherit' : stdio[i]);
    out.push('pipe');
    return out;
  }
  throw new TypeError('options.stdio must be a string or an array of up to 3 entries');
}

/**
 * What to spawn for createWorker(file, args, options): `{ command, args,
 * options, forwardStderr }` for child_process.spawn. `spawnOptions` are the
 * caller's other spawn options (cwd, env, ...); they are not modified. With
 * `stderrTail` > 0 the worker's fd 2 becomes a pipe, which the parent copies
 * to its own stderr (`forwardStderr`) unless the caller asked for 'pipe'.
 *
 * With `remote`, the command is the relay that runs `file` on that target.
 *
 * Throws TypeError for a bad `stdio` or `remote`, or a `stdio` that gives fd
 * 2 elsewhere while `stderrTail` asks to read it.
 */
function planSpawn(file, args, { isCommand, python, remote = null, stdio, stderrTail = 0, spawnOptions }) {
  const options = { ...spawnOptions, stdio: buildStdio(stdio) };
  let forwardStderr = false;
  if (stderrTail > 0) {
    const fd2 = options.stdio[2];
    if (fd2 === 'inherit') forwardStderr = true;
    else if (fd2 !== 'pipe') {
      throw new TypeError(`stderrTail reads the worker's stderr: fd 2 must be 'inherit' or 'pipe', not ${String(fd2)}`);
    }
    options.stdio[2] = 'pipe';
  }
  const resolved = remote === null || remote === undefined
    ? resolveCommand(file, args, isCommand, python)
    : relayCommand(remote, file, args, isCommand, python);
  const [command, argv] = closeInheritedDescriptors(...resolved, options);
  return { command, args: argv, options, forwardStderr };
}

module.exports = { planSpawn };
