/**
 * bench:transport's clients, `count` of one kind in this process, each with
 * a connection of its own, answering every message at once: grpc-js (the
 * channel options of NetSync's Slave), socket.io-client, or ws. Reports its
 * CPU when asked.
 */
import * as grpc from "@grpc/grpc-js";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { childConfig, emit, onCommands, sleep, usage } from "../lib/common.js";
import { ANSWER, BYTES_METHOD } from "./wire.js";

interface ClientsConfig {
  kind: "grpc" | "sio" | "ws";
  port: number;
  count: number;
}

const { kind, port, count } = childConfig<ClientsConfig>();
const open: Array<() => void> = [];

function grpcClient(): () => void {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.enable_retries": 0,
  });
  const call = client.makeBidiStreamRequest(BYTES_METHOD.path, BYTES_METHOD.requestSerialize, BYTES_METHOD.responseDeserialize);
  call.on("data", () => call.write(ANSWER));
  call.on("error", () => {});
  call.write(Buffer.alloc(0)); // opens the stream; servers do not count an empty message
  return () => client.close();
}

function sioClient(): () => void {
  const socket = io(`http://127.0.0.1:${port}`, { transports: ["websocket"], reconnection: false });
  socket.on("q", (_data: string, ack: (answer: string) => void) => ack("r"));
  return () => socket.close();
}

function wsClient(): () => void {
  const ws = new WebSocket(`ws://127.0.0.1:${port}`, { perMessageDeflate: false });
  ws.on("message", () => ws.send(ANSWER));
  ws.on("error", () => {});
  return () => ws.close();
}

const make = { grpc: grpcClient, sio: sioClient, ws: wsClient }[kind];
for (let i = 0; i < count; i++) {
  open.push(make());
  if (i % 200 === 199) await sleep(50); // a ramp the servers' accept queues take
}
onCommands((command) => (command.cmd === "cpu" ? { cpuMs: usage().cpuMs } : { error: `unknown command ${command.cmd}` }));
emit({ ev: "opened" });
process.on("SIGTERM", () => {
  for (const close of open) close();
  process.exit(0);
});
