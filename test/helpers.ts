import { type EventEmitter, once as eventsOnce } from "node:events";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { type Command, CommandSchema, NetSyncService } from "../gen/netsync/v1/netsync_pb.js";
import type { ClientBidiCall } from "../src/grpc-adapter.js";
import {
  Master,
  type MasterOptions,
  NetSyncError,
  SLAVE_ID_METADATA_KEY,
  Slave,
  type SlaveEvent,
  type SlaveOptions,
  silentLogger,
} from "../src/index.js";
import { Encoded, openBidi } from "../src/internal.js";

// --- waiting -------------------------------------------------------------------

function timeoutError(what: string, timeoutMs: number): Error {
  return new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Resolves with the arguments of the next `event`, or rejects after `timeoutMs` with a clear message. */
export function once<E extends Record<keyof E, unknown[]>, K extends keyof E & string>(
  emitter: EventEmitter<E>,
  event: K,
  timeoutMs?: number,
): Promise<E[K]>;
export function once(emitter: NodeJS.EventEmitter, event: string, timeoutMs?: number): Promise<unknown[]>;
export async function once(emitter: object, event: string, timeoutMs = 2_000): Promise<unknown[]> {
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    return await eventsOnce(emitter as NodeJS.EventEmitter, event, { signal });
  } catch (err) {
    if (signal.aborted) throw timeoutError(`event "${event}"`, timeoutMs);
    throw err;
  }
}

/** Like once(), but only for an emission whose arguments satisfy `predicate`. */
export function onceWhere<E extends Record<keyof E, unknown[]>, K extends keyof E & string>(
  emitter: EventEmitter<E>,
  event: K,
  predicate: (...args: E[K]) => boolean,
  timeoutMs = 2_000,
): Promise<E[K]> {
  const target = emitter as unknown as NodeJS.EventEmitter;
  return new Promise<E[K]>((resolve, reject) => {
    const signal = AbortSignal.timeout(timeoutMs);
    const listener = (...args: unknown[]) => {
      if (!predicate(...(args as E[K]))) return;
      done();
      resolve(args as E[K]);
    };
    const onAbort = () => {
      done();
      reject(timeoutError(`a matching event "${event}"`, timeoutMs));
    };
    const done = () => {
      target.off(event, listener);
      signal.removeEventListener("abort", onAbort);
    };
    target.on(event, listener);
    signal.addEventListener("abort", onAbort);
  });
}

// The polling wait is shared with the benchmarks; re-exported so every test takes its helpers from here.
export { waitFor } from "./support/wait.js";

/** Only for asserting that something does NOT happen within a window. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Blocks the event loop for `ms`. */
export function busyWait(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) {
    // spin
  }
}

// --- cleanup registry ----------------------------------------------------------

const closers: Array<() => unknown> = [];

/** Registers something to close in the current test's cleanup. */
export function track(close: () => unknown): void {
  closers.push(close);
}

/**
 * Closes everything created since the last cleanup, all at once (a slave and
 * its master may close concurrently). Call it from each file's afterEach.
 */
export async function cleanup(): Promise<void> {
  const list = closers.splice(0);
  const results = await Promise.allSettled(list.map(async (close) => close()));
  const errors = results.flatMap((r) => (r.status === "rejected" ? [r.reason] : []));
  if (errors.length > 0) throw new AggregateError(errors, `cleanup: ${errors.length} close() calls failed`);
}

// --- master and slaves ---------------------------------------------------------

export const TEST_INTERVAL = 20;
export const TEST_TIMEOUT = 100;
/** Scheduler resolution plus timer and loop jitter on a busy 2-core machine. */
export const TOLERANCE = 60;
/**
 * Heartbeats for tests that are not about liveness but load the machine (CLI processes, child
 * programs, big broadcasts): at TEST_TIMEOUT a starved in-process slave gets evicted and the test
 * fails for a reason it does not test. A slave of such a master gets `masterTimeout: heartbeatTimeout`.
 */
export const RELAXED_HEARTBEAT = { heartbeatInterval: 200, heartbeatTimeout: 2_000 } as const;

/** pongsReceived of the slave `id`, or -1 when it is not registered. */
export function pongsOf(master: Master, id: string): number {
  return master.slaves().find((s) => s.id === id)?.pongsReceived ?? -1;
}

/** Every master event, by kind, for assertions that something did NOT happen. */
export function recordEvents(master: Master): { connected: SlaveEvent[]; evicted: SlaveEvent[]; disconnected: SlaveEvent[] } {
  const log = { connected: [] as SlaveEvent[], evicted: [] as SlaveEvent[], disconnected: [] as SlaveEvent[] };
  master.on("slave:connected", (e) => log.connected.push(e));
  master.on("slave:evicted", (e) => log.evicted.push(e));
  master.on("slave:disconnected", (e) => log.disconnected.push(e));
  return log;
}

/** A listening master on 127.0.0.1 and a free port, closed by cleanup(). */
export async function startMaster(opts: MasterOptions = {}): Promise<Master> {
  const master = new Master({
    port: 0,
    host: "127.0.0.1",
    heartbeatInterval: TEST_INTERVAL,
    heartbeatTimeout: TEST_TIMEOUT,
    logger: silentLogger(),
    ...opts,
  });
  track(() => master.close());
  await master.listen();
  return master;
}

/** A slave with test-sized timings, closed by cleanup(); not started. */
function newSlave(address: string, opts: Partial<SlaveOptions>): Slave {
  const slave = new Slave({
    master: address,
    masterTimeout: 300,
    backoff: { initial: 20, max: 200 },
    logger: silentLogger(),
    ...opts,
  });
  track(() => slave.close());
  return slave;
}

/** A started slave with test-sized timings, closed by cleanup(). Does not wait for the connection. */
export function createSlave(address: string, opts: Partial<SlaveOptions> = {}): Slave {
  const slave = newSlave(address, opts);
  slave.start();
  return slave;
}

/** createSlave(), then waits for its first 'connected'. */
export async function startSlave(address: string, opts: Partial<SlaveOptions> = {}, timeoutMs = 2_000): Promise<Slave> {
  const slave = newSlave(address, opts);
  const connected = once(slave, "connected", timeoutMs);
  slave.start();
  await connected;
  return slave;
}

// --- raw client ----------------------------------------------------------------

export type CommandInit = MessageInitShape<typeof CommandSchema>;

export interface RawClientOptions {
  /** Sent as netsync-slave-id (an empty string is sent as is). Omitted when undefined. */
  id?: string;
  /** Answer every Ping with a Pong. Default false: the client only writes what the test writes. */
  autoPong?: boolean;
  /** Extra channel options. */
  channelOptions?: grpc.ChannelOptions;
  /** Extra request metadata, e.g. { "netsync-slave-labels": "region=eu" }. */
  metadata?: Record<string, string>;
}

/** A plain grpc-js client on the Sync method: the test decides every byte it writes. */
export interface RawClient {
  readonly client: grpc.Client;
  readonly call: ClientBidiCall<typeof CommandSchema, typeof CommandSchema>;
  /** Every message received from the master. */
  readonly received: Command[];
  /** performance.now() of the last write; undefined before the first. */
  readonly lastWriteAt: number | undefined;
  /** Response headers (the master sends them when it registers the stream). */
  readonly headers: Promise<grpc.Metadata>;
  /** The final status of the call, whatever it is. */
  readonly status: Promise<grpc.StatusObject>;
  /** The status once it arrived, else undefined. */
  readonly finalStatus: grpc.StatusObject | undefined;
  /** Writes a Command (init or message) or pre-encoded bytes. */
  write(message: CommandInit | Encoded): void;
  /** Calls `fn` every `ms` until the client is closed. */
  every(ms: number, fn: () => void): void;
  /** Cancels the call and closes the channel; idempotent. */
  close(): void;
}

/** Opens a raw Sync stream to `address`; closed by cleanup(). */
export function rawClient(address: string, options: RawClientOptions = {}): RawClient {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), {
    // A connection of its own, so that closing it (or the master ending it) touches no one else.
    "grpc.use_local_subchannel_pool": 1,
    ...options.channelOptions,
  });
  const metadata = new grpc.Metadata();
  if (options.id !== undefined) metadata.set(SLAVE_ID_METADATA_KEY, options.id);
  for (const [key, value] of Object.entries(options.metadata ?? {})) metadata.set(key, value);
  const call = openBidi(client, NetSyncService.method.sync, metadata);
  const received: Command[] = [];
  const intervals: NodeJS.Timeout[] = [];
  let lastWriteAt: number | undefined;
  let finalStatus: grpc.StatusObject | undefined;
  let closed = false;

  const headers = new Promise<grpc.Metadata>((resolve) => call.once("metadata", resolve));
  const status = new Promise<grpc.StatusObject>((resolve) =>
    call.once("status", (s: grpc.StatusObject) => {
      finalStatus = s;
      resolve(s);
    }),
  );
  // The status also arrives as an 'error' for any code but OK; without a listener it would throw.
  call.on("error", () => {});

  const write = (message: CommandInit | Encoded) => {
    if (closed) return;
    lastWriteAt = performance.now();
    call.write(message instanceof Encoded ? message : create(CommandSchema, message));
  };

  call.on("data", (command: Command) => {
    received.push(command);
    if (options.autoPong && command.kind.case === "ping") {
      write({ kind: { case: "pong", value: { seq: command.kind.value.seq } } });
    }
  });

  const close = () => {
    if (closed) return;
    closed = true;
    for (const timer of intervals) clearInterval(timer);
    call.cancel();
    client.close();
  };
  track(close);

  return {
    client,
    call,
    received,
    get lastWriteAt() {
      return lastWriteAt;
    },
    headers,
    status,
    get finalStatus() {
      return finalStatus;
    },
    write,
    every(ms, fn) {
      if (!closed) intervals.push(setInterval(fn, ms));
    },
    close,
  };
}

/** Resolves with the raw client's status, or rejects after `timeoutMs`. */
export function statusOf(raw: RawClient, timeoutMs = 2_000): Promise<grpc.StatusObject> {
  return within(raw.status, timeoutMs, "the raw client's status");
}

/** Resolves with `promise`, or rejects after `timeoutMs` naming `what`. */
export async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(timeoutError(what, timeoutMs)), timeoutMs);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves with the NetSyncError `promise` rejects with; fails if it resolves or takes longer than `timeoutMs`. */
export async function rejection(promise: Promise<unknown>, timeoutMs: number, what: string): Promise<NetSyncError> {
  const outcome = await within(
    promise.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    ),
    timeoutMs,
    what,
  );
  if (outcome.ok) expect.fail(`${what}: expected a rejection, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).to.be.instanceOf(NetSyncError);
  return outcome.error as NetSyncError;
}

/** A promise the test resolves itself (released by cleanup at the latest, so no handler outlives a test). */
export function gate(): { promise: Promise<string>; release: (value?: string) => void } {
  let release!: (value?: string) => void;
  const promise = new Promise<string>((resolve) => (release = (value = "released") => resolve(value)));
  track(() => release());
  return { promise, release };
}
