/**
 * The floor: a bare @grpc/grpc-js bidi server that pings every open stream on
 * one interval with the least code possible. No registry beyond a Set of
 * calls, no ids, no deadlines, no evictions. Same wire format as NetSync
 * (serviceDefinition(NetSyncService), one Encoded Ping per round).
 *
 * As "floor-spread" (config.slices > 1) it spreads each round the way
 * NetSync's scheduler does: the open streams, taken at the round's start,
 * cut into `slices` parts pinged interval / slices apart. Against the floor
 * it prices spreading itself in grpc-js (wake-ups, smaller flushes); against
 * NetSync it leaves NetSync's own work.
 */

import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Command, CommandSchema, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { DecodeFailure, Encoded, serviceDefinition } from "../../src/grpc-adapter.js";
import { childConfig, emit, hrNow, onCommands, usage } from "../lib/common.js";
import { withPhases } from "../lib/probe.js";
import type { ServerConfig } from "./types.js";

type Call = grpc.ServerDuplexStream<Command | DecodeFailure, Command | Encoded>;

const config = childConfig<ServerConfig>();
const calls = new Set<Call>();
const server = new grpc.Server();
server.addService(serviceDefinition(NetSyncService), {
  [NetSyncService.method.sync.localName]: (call: Call) => {
    calls.add(call);
    const forget = () => calls.delete(call);
    call.on("end", forget);
    call.on("cancelled", forget);
    call.on("error", forget);
    call.on("data", (message: Command | DecodeFailure) => {
      // Pongs need no work; a Custom is the slave-side RTT probe: echo it.
      if (!(message instanceof DecodeFailure) && message.kind.case === "custom") call.write(message);
    });
  },
});

const port = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`${config.host}:0`, grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
);

let seq = 0n;
const slices = Math.max(1, config.slices ?? 1);
let round: Call[] = [];
let slice = 0;
setInterval(() => {
  if (slice === 0) {
    round = [...calls];
    seq++;
  }
  const ping = Encoded.of(
    CommandSchema,
    create(CommandSchema, { kind: { case: "ping", value: { seq, sentAtUnixMs: BigInt(Date.now()) } } }),
  );
  const from = Math.floor((slice * round.length) / slices);
  const to = Math.floor(((slice + 1) * round.length) / slices);
  for (let i = from; i < to; i++) if (calls.has(round[i]!)) round[i]!.write(ping);
  slice = (slice + 1) % slices;
}, config.interval / slices);

emit({ ev: "ready", port });

onCommands(
  withPhases((command) => {
    switch (command.cmd) {
      case "stats":
        return { connected: calls.size, evicted: 0, lost: 0, ...usage() };
      case "broadcast": {
        const sentAt = hrNow();
        const message = Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "custom", value: { data: `b:${sentAt}` } } }));
        for (const call of calls) call.write(message);
        return { sentAt, callMs: hrNow() - sentAt, written: calls.size };
      }
      case "events":
        return { evicted: [], lost: [] };
      default:
        return { error: `unknown command ${command.cmd}` };
    }
  }),
);

process.on("SIGTERM", () => process.exit(0));
