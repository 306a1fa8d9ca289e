/**
 * Load generator of the cluster benchmark: raw grpc-js slaves (not the Slave
 * class, like bench/loadgen/grpc.ts) that are given every master's address.
 * Each slave's list is `start` (so the orchestrator decides the spread)
 * followed by the other addresses in a random order of its own, as if every
 * slave had been given its own shuffled `--master` list: a slave given the
 * same list as all the others would take the whole load of a dead master to
 * the one next in the list. When its stream ends, a slave dials the next
 * address of its list after a full-jitter backoff
 * (100 ms × 2^attempt capped at 10 s, the Slave class's default), with a
 * fresh grpc.Client (its own HTTP/2 connection). A Custom asking for a reply
 * is answered at once with a Reply carrying the same data; a Custom "b:<t>"
 * is a broadcast, its delivery time recorded.
 *
 * Commands: "status" (opened, live streams by address, ends by reason),
 * "collect" (broadcast delivery samples, then cleared).
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Command, CommandSchema, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { Encoded, openBidi } from "../../src/grpc-adapter.js";
import { SLAVE_ID_METADATA_KEY } from "../../src/wire.js";
import { childConfig, emit, hrNow, onCommands, round } from "../lib/common.js";

export interface ClusterLoadgenConfig {
  /** Port of every master; slave j dials them at hosts[j % hosts.length] (loopback addresses, so 4-tuples do not run out). */
  ports: number[];
  hosts: string[];
  /** Index of the address every slave of this generator starts at. */
  start: number;
  count: number;
  prefix: string;
  openBatch: number;
}

const config = childConfig<ClusterLoadgenConfig>();
const channelOptions: grpc.ChannelOptions = { "grpc.use_local_subchannel_pool": 1, "grpc.enable_retries": 0 };
const credentials = grpc.credentials.createInsecure();

const BACKOFF_INITIAL = 100;
const BACKOFF_MAX = 10_000;

let stopping = false;
let opened = 0;
let reconnects = 0;
let dialFailures = 0;
const dialErrors = new Map<string, number>();
const live = new Map<string, number>();
const ends = new Map<string, number>();
let bcast: number[] = [];

const pongs = new Map<bigint, Encoded>();
function pongFor(seq: bigint): Encoded {
  let pong = pongs.get(seq);
  if (!pong) {
    if (pongs.size > 8) pongs.clear();
    pong = Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "pong", value: { seq } } }));
    pongs.set(seq, pong);
  }
  return pong;
}

const bump = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

class BenchSlave {
  private attempt = 0;
  private client: grpc.Client | undefined;

  private index = 0;
  /** Indexes into config.ports: the start, then the others shuffled. */
  private readonly order: number[];

  private readonly host: string;

  constructor(
    readonly id: string,
    start: number,
    index: number,
  ) {
    this.host = config.hosts[index % config.hosts.length]!;
    const others = config.ports.map((_, i) => i).filter((i) => i !== start);
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [others[i], others[j]] = [others[j]!, others[i]!];
    }
    this.order = [start, ...others];
  }

  /** Dials the current address; resolves once the stream is open (or the dial failed and a retry is scheduled). */
  async connect(): Promise<void> {
    const address = `${this.host}:${config.ports[this.order[this.index]!]!}`;
    this.client?.close();
    const client = new grpc.Client(address, credentials, channelOptions);
    this.client = client;
    try {
      await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 20_000, (err) => (err ? reject(err) : resolve())));
    } catch (err) {
      dialFailures++;
      bump(dialErrors, (err as Error).message.slice(0, 80));
      this.retry();
      return;
    }
    if (stopping) return;
    const metadata = new grpc.Metadata();
    metadata.set(SLAVE_ID_METADATA_KEY, this.id);
    const call = openBidi(client, NetSyncService.method.sync, metadata);
    opened++;
    bump(live, address);
    let done = false;
    const end = (reason: string) => {
      if (done) return;
      done = true;
      bump(live, address, -1);
      if (stopping) return;
      bump(ends, `${address} ${reason}`);
      this.index = (this.index + 1) % this.order.length;
      this.retry();
    };
    call.on("data", (command: Command) => {
      switch (command.kind.case) {
        case "ping":
          this.attempt = 0;
          call.write(pongFor(command.kind.value.seq));
          return;
        case "custom": {
          const { data, requestId } = command.kind.value;
          if (requestId !== 0n) {
            call.write(create(CommandSchema, { kind: { case: "reply", value: { requestId, result: { case: "data", value: data } } } }));
          } else if (data.startsWith("b:")) {
            bcast.push(hrNow() - Number(data.slice(2)));
          }
          return;
        }
        default:
          return;
      }
    });
    call.on("error", (err: grpc.ServiceError) => end(`${grpc.status[err.code] ?? err.code}: ${err.details}`.slice(0, 80)));
    call.on("end", () => end("end"));
  }

  private retry(): void {
    if (stopping) return;
    reconnects++;
    const cap = Math.min(BACKOFF_MAX, BACKOFF_INITIAL * 2 ** this.attempt++);
    setTimeout(() => void this.connect(), Math.random() * cap);
  }
}

onCommands((command) => {
  switch (command.cmd) {
    case "status":
      return {
        opened,
        reconnects,
        dialFailures,
        dialErrors: Object.fromEntries(dialErrors),
        live: Object.fromEntries(live),
        ends: Object.fromEntries(ends),
        heapMB: round(process.memoryUsage().heapUsed / 2 ** 20, 1),
      };
    case "collect": {
      const reply = { bcast: bcast.map((v) => round(v)) };
      bcast = [];
      return reply;
    }
    default:
      return { error: `unknown command ${command.cmd}` };
  }
});
process.on("SIGTERM", () => {
  stopping = true;
  process.exit(0);
});

const started = performance.now();
const slaves: BenchSlave[] = [];
for (let i = 0; i < config.count; i++) slaves.push(new BenchSlave(`${config.prefix}${i}`, config.start % config.ports.length, i));
for (let i = 0; i < slaves.length; i += config.openBatch) {
  await Promise.all(slaves.slice(i, i + config.openBatch).map((s) => s.connect()));
}
emit({ ev: "ready", n: config.count, ms: Math.round(performance.now() - started) });
