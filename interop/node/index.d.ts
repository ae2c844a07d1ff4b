/// <reference types="node" />

import type { ChildProcess, SpawnOptions, StdioNull, StdioPipe } from 'node:child_process';
import type { Stream } from 'node:stream';

// ---------------------------------------------------------------------------
// Protocol constants and errors

export declare const PROTOCOL: Readonly<{
  /** Byte the parent sends first (0x00). */
  PARENT_HANDSHAKE: 0x00;
  /** Byte the worker answers with (0x01). */
  WORKER_HANDSHAKE: 0x01;
  /** Size of a frame header in bytes (4). */
  HEADER_SIZE: 4;
  /** Largest payload length the wire can express (2^32 - 1). */
  MAX_MESSAGE_SIZE: 4294967295;
  /** File descriptor of the channel in the worker process (3). */
  CHANNEL_FD: 3;
}>;

export declare class ProtocolError extends Error {
  constructor(message: string, code: string);
  readonly code: string;
  /** Set on errors that end a worker's lifetime. */
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
}

export declare class HandshakeError extends ProtocolError {
  constructor(expected: number, got: number);
  readonly code: 'ERR_BAD_HANDSHAKE';
  readonly expected: number;
  readonly got: number;
}

export declare class MessageTooLargeError extends ProtocolError {
  constructor(length: number, limit: number);
  readonly code: 'ERR_MESSAGE_TOO_LARGE';
  readonly length: number;
  readonly limit: number;
}

export declare class TruncatedStreamError extends ProtocolError {
  constructor(stage: 'handshake' | 'header' | 'payload', missing: number);
  readonly code: 'ERR_TRUNCATED';
  readonly stage: 'handshake' | 'header' | 'payload';
  readonly missing: number;
}

// ---------------------------------------------------------------------------
// Sans-I/O codec

export type Role = 'parent' | 'worker';

export type DecoderEvent =
  | { type: 'handshake' }
  | { type: 'message'; payload: Buffer }
  | { type: 'end' };

export interface DecoderOptions {
  /** Role of the local side: a parent expects 0x01 first, a worker 0x00. */
  role: Role;
  /** Largest accepted payload; defaults to the largest Buffer this process can hold, at most 2^32 - 1. */
  maxMessageSize?: number;
}

export declare class Decoder {
  constructor(options: DecoderOptions);
  readonly role: Role;
  /** The limit actually enforced. */
  readonly maxMessageSize: number;
  /** True once the handshake byte has been accepted. */
  readonly handshaken: boolean;
  /** True when the decoder is between two frames (after the handshake). */
  readonly atBoundary: boolean;
  /** The protocol error hit so far (thrown by every later call), or null. */
  readonly error: ProtocolError | null;
  /**
   * Decode a chunk. Throws a ProtocolError on bad input, except when events
   * precede the bad bytes in the same chunk: those events are returned and
   * the error is recorded in `error` and thrown by the next call.
   */
  feed(chunk: Uint8Array): DecoderEvent[];
  /** Signal end of stream. Throws TruncatedStreamError unless at a frame boundary after the handshake. */
  end(): DecoderEvent[];
}

/** Encode the 4-byte big-endian header of a frame with a `length`-byte payload. */
export declare function encodeHeader(length: number): Buffer;

/** The handshake byte sent by `role`: 0x00 for the parent, 0x01 for the worker. */
export declare function handshakeByte(role: Role): number;

// ---------------------------------------------------------------------------
// Shared channel surface

interface MessageEndpoint extends AsyncIterable<Buffer> {
  /**
   * Called once per incoming message. Messages that arrive while it is not
   * set are queued and delivered in order once it is set. If it returns a
   * promise, the next message is delivered only once that promise settles.
   * Reading stops while more than 4 MiB of messages are queued and resumes
   * below 1 MiB, so a slow consumer holds the peer back.
   */
  onmessage: ((message: Buffer) => unknown) | null;
  /**
   * Send one message. Resolves once the frame has been handed to the socket
   * (it stays pending while the peer does not read).
   * Do not modify `message` before the promise settles.
   */
  send(message: Uint8Array): Promise<void>;
  /** Yields incoming messages until the peer ends its stream. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer>;
}

// ---------------------------------------------------------------------------
// Parent side

export type StdioEntry = StdioPipe | StdioNull | 'inherit' | number | Stream;

export interface CreateWorkerOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Spawn `file` as-is, without choosing an interpreter from its extension. */
  isCommand?: boolean;
  /** Interpreter for `.py` files (default: $WORKER_PROCESS_PYTHON or 'python3'). */
  python?: string;
  /** Milliseconds to wait for the handshake (default 60000; 0, Infinity or null: no limit). */
  handshakeTimeout?: number | null;
  /** Milliseconds the worker may run before it is killed (default null: no limit; 0 and Infinity also mean no limit). */
  maxDuration?: number | null;
  /** Largest message accepted from the worker. */
  maxMessageSize?: number;
  /** File descriptors 0-2 of the worker: one setting for all, or up to three entries (default 'inherit'). */
  stdio?: 'inherit' | 'pipe' | 'ignore' | 'overlapped' | [StdioEntry?, StdioEntry?, StdioEntry?];
  /**
   * Keep the last N lines of the worker's stderr for the error that reports
   * its death (default 0: none; null: none). The worker's fd 2 becomes a pipe
   * whose bytes are still copied to this process's stderr; fd 2 must be
   * 'inherit' (the default) or 'pipe' (then nothing is copied).
   */
  stderrTail?: number | null;
  /**
   * Run the worker on another host: 'ssh://[user@]host[:port]', or an argv
   * prefix such as ['docker', 'exec', '-i', 'box'] (default null: here).
   * The parent then starts `<python> -m worker_process relay [--command]
   * TARGET -- file args...` as the worker (<python> as for .py files); `file`
   * and `args` are resolved on the remote host.
   */
  remote?: string | readonly string[] | null;
}

export interface CloseOptions {
  /** Milliseconds before SIGTERM, and again before SIGKILL (default 5000; Infinity or null: never). */
  timeout?: number | null;
  /** Reject with a WorkerExitError when the worker exited with a non-zero code or a signal (default false). */
  check?: boolean;
}

export interface ExitStatus {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
}

/** Rejection reason of `Worker.lifetime` when the worker exits unsuccessfully. */
export interface LifetimeExitError extends Error {
  /** Exit code of the worker, or null when it was killed by a signal. */
  code: number | null;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** The last lines of its stderr, with the stderrTail option ('' otherwise). */
  stderr?: string;
}

/**
 * The worker died (a non-zero exit code or a signal). A send, a receive
 * (async iteration) or `close({ check: true })` rejects with it once the
 * worker is known to have died; the parent waits up to about a second for
 * the exit status when the channel broke first.
 */
export declare class WorkerExitError extends Error {
  readonly code: 'ERR_WORKER_EXITED';
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines of the worker's stderr, with the stderrTail option ('' otherwise). */
  readonly stderr: string;
  /** What the channel saw: the write error (EPIPE, ...), if any. */
  readonly cause?: unknown;
}

/** Error with a string code, as used for timeouts, early exits and a missing channel. */
export interface WorkerProcessError extends Error {
  code: 'ERR_HANDSHAKE_TIMEOUT' | 'ERR_WORKER_EXITED' | 'ERR_MAX_DURATION' | 'ERR_NO_CHANNEL' | 'ERR_CHANNEL_CLOSED';
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
}

export declare class Worker implements MessageEndpoint {
  private constructor();
  /**
   * Called once per incoming message, in order; if it returns a promise, the
   * next message waits until it settles. Messages queue while it is unset.
   */
  onmessage: ((message: Buffer) => unknown) | null;
  /**
   * Send one message. Resolves once the frame has been handed to the socket.
   * A failed write (EPIPE once the worker is gone) rejects the pending sends
   * only: it does not decide `lifetime`. Once the worker died, sends reject
   * with a WorkerExitError (the write error as its `cause`).
   */
  send(message: Uint8Array): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer>;
  /**
   * Resolves when the worker exits with code 0 and every message it sent has
   * been delivered (also when the parent's writes failed because the worker
   * was gone); rejects with a LifetimeExitError, a ProtocolError or an
   * ERR_MAX_DURATION error otherwise.
   */
  readonly lifetime: Promise<void>;
  readonly pid: number;
  /** The child process (its `spawnfile` is a shell when inherited descriptors had to be closed). */
  readonly process: ChildProcess;
  /** Send a signal to the worker. */
  kill(signal?: NodeJS.Signals | number): boolean;
  /**
   * Flush pending sends, end the parent's side of the channel and wait for
   * the worker to exit, escalating to SIGTERM and SIGKILL. Resolves once
   * the worker has been reaped; with `check: true`, rejects with a
   * WorkerExitError instead when it exited unsuccessfully.
   */
  close(options?: CloseOptions): Promise<ExitStatus>;
}

/**
 * Start `file` as a worker and complete the handshake. `.js`/`.mjs`/`.cjs`
 * files run under this Node.js, `.py` files under Python, anything else is
 * spawned as a program.
 */
export declare function createWorker(file: string, args?: readonly string[], options?: CreateWorkerOptions): Promise<Worker>;
export declare function createWorker(file: string, options: CreateWorkerOptions): Promise<Worker>;

// ---------------------------------------------------------------------------
// Worker side

export interface ConnectOptions {
  /** Milliseconds to wait for the parent's handshake byte (default 60000; 0, Infinity or null: no limit). */
  handshakeTimeout?: number | null;
  /** Largest message accepted from the parent. */
  maxMessageSize?: number;
}

export declare class Connection implements MessageEndpoint {
  private constructor();
  /**
   * Called once per incoming message, in order; if it returns a promise, the
   * next message waits until it settles. Messages queue while it is unset.
   */
  onmessage: ((message: Buffer) => unknown) | null;
  /**
   * Called after the parent ended its stream cleanly and every queued message
   * has been delivered. If it returns a promise, the automatic finish() waits for it.
   */
  onend: (() => unknown) | null;
  send(message: Uint8Array): Promise<void>;
  [Symbol.asyncIterator](): AsyncIterableIterator<Buffer>;
  /** Flush every frame sent so far, then end the worker's side of the channel. */
  finish(): Promise<void>;
}

/** Adopt fd 3 as the channel to the parent and complete the handshake. */
export declare function connect(options?: ConnectOptions): Promise<Connection>;

// ---------------------------------------------------------------------------
// Defaults

/** The default of every option (durations in milliseconds; null: no limit or not set). */
export declare const defaults: Readonly<{
  createWorker: Readonly<{
    isCommand: false;
    /** null: $WORKER_PROCESS_PYTHON, else 'python3'. */
    python: null;
    handshakeTimeout: 60000;
    maxDuration: null;
    maxMessageSize: 4294967295;
    stdio: 'inherit';
    remote: null;
    stderrTail: 0;
  }>;
  close: Readonly<{
    timeout: 5000;
    check: false;
  }>;
  connect: Readonly<{
    handshakeTimeout: 60000;
    maxMessageSize: 4294967295;
  }>;
}>;

// ---------------------------------------------------------------------------
// Request/response (one reply per request, in order) and pools

export interface RequestOptions {
  /**
   * Milliseconds to wait for the reply (0, Infinity or null: no limit). On
   * expiry the request rejects with RequestTimeoutError; the reply, when it
   * comes, is dropped, so later requests still get their own.
   */
  timeout?: number | null;
}

export interface Worker {
  /**
   * Send `message` and resolve with the worker's reply: the n-th message the
   * worker sends after the first request answers the n-th request
   * (spec/requests.md). Requests may be issued concurrently (pipelined).
   * While requests wait for their replies, the worker's messages are those
   * replies: setting onmessage throws RequestConflictError and an iterator's
   * next() rejects with it; request() rejects with it while onmessage is set
   * or an iterator waits for a message. Rejects with NoReplyError when the
   * worker ends its stream, breaks or dies before replying.
   */
  request(message: Uint8Array, options?: RequestOptions): Promise<Buffer>;
}

/** The worker ended its stream, broke or died before replying. */
export declare class NoReplyError extends Error {
  readonly code: 'ERR_NO_REPLY';
  readonly pid: number;
  /** Exit code, when the worker exited (null when killed by a signal or still running). */
  readonly exitCode: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** No reply within the request's timeout (in a pool, the worker `pid` was killed and replaced). */
export declare class RequestTimeoutError extends Error {
  readonly code: 'ERR_REQUEST_TIMEOUT';
  /** The limit in milliseconds. */
  readonly timeout: number;
  readonly pid: number;
}

/** request() and another reader (onmessage, an iterator) both wanted the worker's messages. */
export declare class RequestConflictError extends Error {
  readonly code: 'ERR_REQUEST_CONFLICT';
}

/** A handler run by serve() threw; carries the worker's stack text. */
export declare class RemoteError extends Error {
  constructor(type: string, message: string, traceback: string);
  readonly code: 'ERR_REMOTE';
  /** The error's class name in the worker (e.g. 'TypeError', 'ValueError'). */
  readonly type: string;
  /** The error's message in the worker (`message` is `${type}: ${remoteMessage}`). */
  readonly remoteMessage: string;
  readonly traceback: string;
}

/** A reply that does not follow serve()'s status-byte convention. */
export declare class ReplyFormatError extends Error {
  readonly code: 'ERR_BAD_REPLY';
}

/** Result of serve()'s reply, or throws the RemoteError it carries (ReplyFormatError if malformed). */
export declare function decodeReply(reply: Uint8Array): Buffer;

export type ServeHandler = (request: Buffer) => Uint8Array | string | null | undefined | void | PromiseLike<Uint8Array | string | null | undefined | void>;

/**
 * Worker side: connect, answer each request with `handler(request)` (sync or
 * async, one at a time, in order) until the parent ends its stream, then
 * finish. A result is sent as 0x00 + bytes (a string as UTF-8, nothing as
 * empty); a thrown error as 0x01 + UTF-8 JSON {type, message, traceback}, and
 * serving goes on.
 */
export declare function serve(handler: ServeHandler, options?: ConnectOptions): Promise<void>;

export interface PoolOptions extends Omit<CreateWorkerOptions, 'timeout'> {
  /** Number of workers (default: os.availableParallelism()). */
  size?: number;
  /** Retries of a request whose worker died on it, each on another worker (default 1). */
  maxRetries?: number;
  /** Milliseconds a worker may work on one request before it is killed and replaced (default: no limit). */
  timeout?: number | null;
  /** Replace a worker after this many requests (default: never). */
  maxRequestsPerWorker?: number | null;
  /**
   * Requests in flight on one worker (default 2): the next request waits in the worker's
   * socket while it works, so it never waits for the parent in between. 1 keeps a request
   * from queueing behind a long one on a busy worker.
   */
  concurrency?: number;
  /** Replies are returned as they are, for workers that do not use serve() (default false). */
  raw?: boolean;
  /**
   * One pool across hosts: `remote` targets (an ssh URL, an argv prefix, or null for this
   * host); each worker started, a replacement included, takes the next one in turn.
   */
  remotes?: Array<string | string[] | null> | null;
}

export interface SubmitOptions {
  /** Overrides the pool's timeout for this request. */
  timeout?: number | null;
}

export interface MapOptions extends SubmitOptions {
  /** Most requests in flight (default: twice size × concurrency). */
  window?: number;
}

/** The pool refused or dropped a request; for 'broken', `cause` is the start-up error. */
export declare class PoolError extends Error {
  readonly reason: 'closed' | 'terminated' | 'broken';
  readonly code: 'ERR_POOL_CLOSED' | 'ERR_POOL_TERMINATED' | 'ERR_POOL_BROKEN';
}

export declare class Pool {
  private constructor();
  readonly size: number;
  readonly maxRetries: number;
  readonly timeout: number | null;
  readonly maxRequestsPerWorker: number | null;
  readonly concurrency: number;
  readonly raw: boolean;
  /** Pids of the workers that are running now. */
  readonly pids: number[];
  /** Requests waiting for a worker. */
  readonly queued: number;
  /**
   * Run one request. Rejects with the worker's RemoteError, RequestTimeoutError,
   * the worker's death (NoReplyError, after maxRetries retries) or PoolError.
   */
  submit(message: Uint8Array, options?: SubmitOptions): Promise<Buffer>;
  /** Results in input order; reads `inputs` lazily, at most `window` requests ahead. */
  map(inputs: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: MapOptions): AsyncGenerator<Buffer, void, undefined>;
  /** Results as they complete. */
  imapUnordered(inputs: Iterable<Uint8Array> | AsyncIterable<Uint8Array>, options?: MapOptions): AsyncGenerator<Buffer, void, undefined>;
  /** Refuse new requests, finish submitted ones, end every worker's channel and wait until all are reaped. */
  close(): Promise<void>;
  /** Reject pending requests, SIGKILL every worker and wait until all are reaped. */
  terminate(): Promise<void>;
}

/**
 * Start `size` workers running `file` and resolve once all completed the
 * handshake; rejects (after reaping what started) if one cannot start.
 */
export declare function createPool(file: string, args?: readonly string[], options?: PoolOptions): Promise<Pool>;
export declare function createPool(file: string, options: PoolOptions): Promise<Pool>;
