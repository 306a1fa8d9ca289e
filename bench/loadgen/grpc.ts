/**
 * Load generator for the two gRPC systems (NetSync and the floor): raw
 * grpc-js clients, not the Slave class, answering each Ping with a Pong at
 * once. One grpc.Client per slave with its own subchannel (its own HTTP/2
 * connection), or with streamsPerConn > 1, that many streams sharing one.
 */

import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { type Command, CommandSchema, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { Encoded, openBidi } from "../../src/grpc-adapter.js";
import { SLAVE_ID_METADATA_KEY } from "../../src/wire.js";
import { hrNow } from "../lib/common.js";
import { config, ended, hostFor, run, SLOW_RTT_MS, state } from "./core.js";

const channelOptions: grpc.ChannelOptions = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.enable_retries": 0,
};
const clients: grpc.Client[] = [];
const credentials = grpc.credentials.createInsecure();

let pongSeq = -1n;
let pong: Encoded | undefined;
function pongFor(seq: bigint): Encoded {
  if (seq !== pongSeq || !pong) {
    pongSeq = seq;
    pong = Encoded.of(CommandSchema, create(CommandSchema, { kind: { case: "pong", value: { seq } } }));
  }
  return pong;
}

function clientFor(index: number): grpc.Client {
  const connection = Math.floor(index / config.streamsPerConn);
  let client = clients[connection];
  if (!client) {
    client = new grpc.Client(`${hostFor(connection)}:${config.port}`, credentials, channelOptions);
    clients[connection] = client;
  }
  return client;
}

async function open(index: number): Promise<void> {
  const client = clientFor(index);
  await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 60_000, (err) => (err ? reject(err) : resolve())));
  const metadata = new grpc.Metadata();
  metadata.set(SLAVE_ID_METADATA_KEY, `${config.prefix}${index}`);
  const call = openBidi(client, NetSyncService.method.sync, metadata);
  state.opened++;
  call.on("data", (command: Command) => {
    switch (command.kind.case) {
      case "ping":
        state.pings++;
        call.write(pongFor(command.kind.value.seq));
        if (state.probing) {
          call.write(create(CommandSchema, { kind: { case: "custom", value: { data: `e:${hrNow()}` } } }));
        }
        return;
      case "custom": {
        const data = command.kind.value.data;
        const t = Number(data.slice(2));
        if (data.startsWith("e:")) {
          const rtt = hrNow() - t;
          state.rtt.push(rtt);
          if (rtt > SLOW_RTT_MS) state.slow.push([index, t, rtt]);
        } else if (data.startsWith("b:")) state.bcast.push(hrNow() - t);
        return;
      }
      default:
        return;
    }
  });
  call.on("error", (err: grpc.ServiceError) => ended(`${grpc.status[err.code] ?? err.code}: ${err.details}`));
  call.on("end", () => ended("end"));
}

await run(open);
