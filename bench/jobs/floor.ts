/**
 * The floor of bench:jobs (`--systems netsync,floor,socketio`, single mode
 * only): a bare @grpc/grpc-js bidi server, as bench/servers/floor.ts, whose
 * "job" is the least a gRPC master can do for one: one pre-encoded Custom
 * asking for a reply (the same request_id for every stream) written to every
 * open call, paced like NetSync's (src/fleet/pacer.ts, 10 ms turns), and a
 * count of the Replies carrying that id. No registry beyond a Set of calls,
 * no per-slave request, timer, promise or result. Against NetSync it leaves
 * what the jobs layer adds; against Socket.IO, what gRPC and HTTP/2 cost.
 *
 * Pings every open stream once per interval in one burst, as the floor does.
 * Protocol: as bench/cluster/master.ts for "stats", "jobs", "loop", "heap".
 */
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Command, CommandSchema, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { pace } from "../../src/fleet/pacer.js";
import { DecodeFailure, Encoded, serviceDefinition } from "../../src/grpc-adapter.js";
import { childConfig, emit, onCommands, usage } from "../lib/common.js";
import { jobCommand } from "./serve.js";

type Call = grpc.ServerDuplexStream<Command | DecodeFailure, Command | Encoded>;

interface FloorConfig {
  host: string;
  interval: number;
  timeout: number;
}

const config = childConfig<FloorConfig>();
const calls = new Set<Call>();
/** The job running now: its request id, replies counted, and what to call once all came. */
let running: { requestId: bigint; expected: number; replies: number; done: () => void } | undefined;

const server = new grpc.Server();
server.addService(serviceDefinition(NetSyncService), {
  [NetSyncService.method.sync.localName]: (call: Call) => {
    calls.add(call);
    const forget = () => calls.delete(call);
    call.on("end", forget);
    call.on("cancelled", forget);
    call.on("error", forget);
    call.on("data", (message: Command | DecodeFailure) => {
      if (message instanceof DecodeFailure || message.kind.case !== "reply" || !running) return;
      if (message.kind.value.requestId !== running.requestId) return;
      if (++running.replies === running.expected) running.done();
    });
  },
});

const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`${config.host}:0`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
);

let seq = 0n;
setInterval(() => {
  seq++;
  const ping = Encoded.of(
    CommandSchema,
    create(CommandSchema, { kind: { case: "ping", value: { seq, sentAtUnixMs: BigInt(Date.now()) } } }),
  );
  for (const call of calls) call.write(ping);
}, config.interval);

emit({ ev: "ready", port });

let nextRequestId = 0n;
/** One job: the same encoded request to every call, paced; resolves with the reply count once all came (or after `timeout`). */
function oneJob(timeout: number): Promise<{ replies: number; failed?: string }> {
  const requestId = ++nextRequestId;
  const targets = [...calls];
  const message = Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "custom", value: { data: "q", requestId } } }));
  return new Promise((resolve) => {
    const timer = setTimeout(() => finish("timeout"), timeout);
    const finish = (failed?: string) => {
      clearTimeout(timer);
      const replies = running?.replies ?? 0;
      running = undefined;
      resolve(failed ? { replies, failed } : { replies });
    };
    running = { requestId, expected: targets.length, replies: 0, done: () => finish() };
    void pace(targets, (call) => {
      call.write(message);
    });
  });
}

onCommands(async (command) => {
  const jobs = jobCommand(command, () => oneJob(Number(command.timeout ?? 10_000)));
  if (jobs) return jobs;
  switch (command.cmd) {
    case "stats":
      return { size: calls.size, evicted: 0, lost: {}, ...usage() };
    default:
      return { error: `unknown command ${command.cmd}` };
  }
});

process.on("SIGTERM", () => process.exit(0));
