/**
 * Socket.IO clients of the cluster benchmark's anchor: socket.io-client,
 * WebSocket only, no reconnection, all to one node. A "q" event is
 * acknowledged at once with its argument; a "b" event is a broadcast whose
 * delivery time is recorded.
 *
 * Commands: "status" (connected, disconnects by reason), "collect" (broadcast samples, then cleared).
 */
import { io } from "socket.io-client";
import { childConfig, emit, hrNow, onCommands, round } from "../lib/common.js";

export interface SioLoadgenConfig {
  url: string;
  count: number;
  openBatch: number;
}

const config = childConfig<SioLoadgenConfig>();
let connected = 0;
const ends = new Map<string, number>();
let bcast: number[] = [];
let stopping = false;

function open(): Promise<void> {
  const socket = io(config.url, { transports: ["websocket"], reconnection: false, forceNew: true });
  socket.on("q", (value: unknown, ack: (value: unknown) => void) => ack(value));
  socket.on("b", (data: string) => bcast.push(hrNow() - Number(data.slice(2))));
  return new Promise<void>((resolve, reject) => {
    socket.once("connect", () => {
      connected++;
      socket.on("disconnect", (reason) => {
        connected--;
        if (!stopping) ends.set(reason, (ends.get(reason) ?? 0) + 1);
      });
      resolve();
    });
    socket.once("connect_error", reject);
  });
}

onCommands((command) => {
  switch (command.cmd) {
    case "status":
      return { connected, ends: Object.fromEntries(ends) };
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
for (let i = 0; i < config.count; i += config.openBatch) {
  await Promise.all(Array.from({ length: Math.min(config.openBatch, config.count - i) }, open));
}
emit({ ev: "ready", n: config.count, ms: Math.round(performance.now() - started) });
