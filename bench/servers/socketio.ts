/**
 * Socket.IO v4 server with liveness equivalent to NetSync's: the server pings
 * each client every `interval` (pingInterval) and closes it when no pong
 * comes within pingTimeout = timeout - interval, so a client silent since its
 * last pong is closed `timeout` after it. WebSocket transport only (long
 * polling would not be a fair match for a persistent stream).
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Server } from "socket.io";
import { childConfig, emit, hrNow, onCommands, usage } from "../lib/common.js";
import { withPhases } from "../lib/probe.js";
import type { ServerConfig, ServerEvents } from "./types.js";

const config = childConfig<ServerConfig>();
const http = createServer();
const io = new Server(http, {
  pingInterval: config.interval,
  pingTimeout: config.timeout - config.interval,
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
});

const events: ServerEvents = { evicted: [], lost: [] };
let connected = 0;

io.on("connection", (socket) => {
  connected++;
  const id = String((socket.handshake.auth as { id?: string }).id ?? socket.id);
  // Instrumentation only: when the last packet came in, to report the silence at eviction.
  let lastSeen = hrNow();
  socket.conn.on("packet", () => {
    lastSeen = hrNow();
  });
  socket.on("echo", (data: string) => socket.emit("echo", data));
  socket.on("disconnect", (reason) => {
    connected--;
    const at = hrNow();
    if (reason === "ping timeout") events.evicted.push({ id, at, silentMs: at - lastSeen, details: reason });
    else events.lost.push({ id, at, reason });
  });
});

await new Promise<void>((resolve) => http.listen(0, config.host, () => resolve()));
emit({ ev: "ready", port: (http.address() as AddressInfo).port });

onCommands(
  withPhases((command) => {
    switch (command.cmd) {
      case "stats":
        return { connected, evicted: events.evicted.length, lost: events.lost.length, ...usage() };
      case "broadcast": {
        const sentAt = hrNow();
        io.emit("cmd", `b:${sentAt}`);
        return { sentAt, callMs: hrNow() - sentAt, written: connected };
      }
      case "events":
        return { ...events };
      default:
        return { error: `unknown command ${command.cmd}` };
    }
  }),
);

process.on("SIGTERM", () => process.exit(0));
