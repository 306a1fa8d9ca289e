// Many slave streams in a process of their own, for the paced fan-out test: the master's event loop
// is measured, so the slaves' work (one Pong per Ping, reading every command) must not run on it.
// Raw grpc-js streams, not the Slave class: `streamsPerConnection` of them share one HTTP/2
// connection, so thousands open in well under a second.
//
// Usage: node --import tsx fanout-slaves.ts <address> <streams> <streams per connection>
// Answers every Ping with a Pong. A line "report" on stdin is answered with one JSON line on stdout:
// how many streams got each sequence of Custom data, e.g. {"b1,b2":3990,"b1,b2,s":10}, and how many ended.

import { createInterface } from "node:readline";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Command, CommandSchema, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { Encoded, openBidi } from "../../src/grpc-adapter.js";
import { SLAVE_ID_METADATA_KEY } from "../../src/wire.js";

const [address, streams, perConnection] = process.argv.slice(2) as [string, string, string];
const customs: string[][] = [];
let ended = 0;
const pongs = new Map<bigint, Encoded>();
const pongFor = (seq: bigint): Encoded => {
  let pong = pongs.get(seq);
  if (!pong) {
    pongs.clear();
    pong = Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "pong", value: { seq } } }));
    pongs.set(seq, pong);
  }
  return pong;
};

const clients: grpc.Client[] = [];
/** Opens stream `i`; resolves once the master answered with its headers. */
function open(i: number): Promise<unknown> {
  const c = Math.floor(i / Number(perConnection));
  clients[c] ??= new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  const metadata = new grpc.Metadata();
  metadata.set(SLAVE_ID_METADATA_KEY, `f${i}`);
  const call = openBidi(clients[c], NetSyncService.method.sync, metadata);
  const received: string[] = [];
  customs.push(received);
  call.on("data", (command: Command) => {
    if (command.kind.case === "ping") call.write(pongFor(command.kind.value.seq));
    else if (command.kind.case === "custom") received.push(command.kind.value.data);
  });
  call.on("error", () => {});
  call.on("end", () => ended++);
  return new Promise((resolve) => call.once("metadata", resolve));
}

// A few hundred at a time, as the bench's generators open them: thousands of connections at once stall this loop past the heartbeat timeout.
for (let from = 0; from < Number(streams); from += 200) {
  const batch: Promise<unknown>[] = [];
  for (let i = from; i < Math.min(from + 200, Number(streams)); i++) batch.push(open(i));
  await Promise.all(batch);
}

createInterface({ input: process.stdin }).on("line", (line) => {
  if (line.trim() !== "report") return;
  const sequences: Record<string, number> = {};
  for (const received of customs) {
    const key = received.join(",");
    sequences[key] = (sequences[key] ?? 0) + 1;
  }
  process.stdout.write(`${JSON.stringify({ sequences, ended })}\n`);
});
