/**
 * The anchor of the cluster benchmark: one Socket.IO 4 node (WebSocket
 * only, pingInterval = interval, pingTimeout = timeout − interval, as in
 * bench/servers/socketio.ts) with `@socket.io/redis-adapter` over the
 * redis-server the bench started (node-redis clients, one to publish, one to
 * subscribe); without `redisUrl`, a lone server with the default in-memory
 * adapter (bench:jobs's single mode).
 *
 * Protocol (JSON lines): prints {"ev":"ready","port"}; answers
 * - "stats": sockets held, ping-timeout closes and other losses, CPU, RSS;
 * - "ids" {n}: up to n ids of sockets on this node;
 * - "emit" {target, count, gapMs, local}: `count` sequential emits to one
 *   socket with an acknowledgement, `io.timeout().to(id).emit()` through the
 *   adapter (the socket may be on another node), or with `local` straight on
 *   the local socket; their latencies;
 * - "fetch" {times}: `io.fetchSockets()` durations and the count found;
 * - "broadcast": `io.emit("b", "b:<send time>")` (reaches every node's sockets through Redis);
 * - "jobs" {count, gapMs, timeout} and "loop" (bench:jobs, bench/jobs/serve.ts):
 *   `io.timeout(timeout).emitWithAck("q", i)` to every socket (of every node),
 *   one after another, each timed to its last acknowledgement; the event loop
 *   watched meanwhile.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";
import { Server } from "socket.io";
import { jobCommand } from "../jobs/serve.js";
import { childConfig, emit, hrNow, onCommands, round, usage } from "../lib/common.js";

export interface SioNodeConfig {
  host: string;
  interval: number;
  timeout: number;
  /** Absent: no adapter of Redis, the default in-memory one (one node alone). */
  redisUrl?: string;
}

const config = childConfig<SioNodeConfig>();

async function redisAdapter(url: string) {
  const pub = createClient({ url });
  const sub = pub.duplicate();
  await Promise.all([pub.connect(), sub.connect()]);
  // fetchSockets() and acknowledged emits give up after this (the adapter's default is 5 s).
  return createAdapter(pub, sub, { requestsTimeout: 10_000 });
}
const adapter = config.redisUrl ? await redisAdapter(config.redisUrl) : undefined;

const http = createServer();
const io = new Server(http, {
  pingInterval: config.interval,
  pingTimeout: config.timeout - config.interval,
  transports: ["websocket"],
  serveClient: false,
  perMessageDeflate: false,
  ...(adapter ? { adapter } : {}),
});

let evicted = 0;
const lostBy = new Map<string, number>();
io.on("connection", (socket) => {
  socket.on("disconnect", (reason) => {
    if (reason === "ping timeout") evicted++;
    else lostBy.set(reason, (lostBy.get(reason) ?? 0) + 1);
  });
});

await new Promise<void>((resolve) => http.listen(0, config.host, () => resolve()));
emit({ ev: "ready", port: (http.address() as AddressInfo).port });

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One acknowledged emit to every socket (bench:jobs); a timeout rejects it, its partial acknowledgements unknown. */
async function oneJob(timeout: number, index: number) {
  try {
    const acks = (await io.timeout(timeout).emitWithAck("q", index)) as unknown[];
    return { replies: acks.length };
  } catch (err) {
    return { replies: 0, failed: (err as Error).message.slice(0, 120) };
  }
}

onCommands(async (command) => {
  const jobs = jobCommand(command, (index) => oneJob(Number(command.timeout ?? 10_000), index));
  if (jobs) return jobs;
  switch (command.cmd) {
    case "stats":
      return { size: io.of("/").sockets.size, evicted, lost: Object.fromEntries(lostBy), ...usage() };
    case "ids":
      return { ids: [...io.of("/").sockets.keys()].slice(0, Number(command.n ?? 1)) };
    case "emit": {
      const target = String(command.target);
      const count = Number(command.count ?? 100);
      const gapMs = Number(command.gapMs ?? 5);
      const samples: number[] = [];
      const errors: Record<string, number> = {};
      for (let i = 0; i < count; i++) {
        const started = performance.now();
        try {
          if (command.local) {
            const socket = io.of("/").sockets.get(target);
            if (!socket) throw new Error("no such local socket");
            await socket.timeout(5_000).emitWithAck("q", i);
          } else {
            const responses = (await io.timeout(5_000).to(target).emitWithAck("q", i)) as unknown[];
            if (responses.length !== 1) throw new Error(`${responses.length} acks`);
          }
          samples.push(performance.now() - started);
        } catch (err) {
          const key = (err as Error).message.slice(0, 80);
          errors[key] = (errors[key] ?? 0) + 1;
        }
        if (gapMs > 0) await sleep(gapMs);
      }
      return { samples: samples.map((v) => round(v)), errors };
    }
    case "fetch": {
      const durations: number[] = [];
      let count = 0;
      let distinct = 0;
      for (let i = 0; i < Number(command.times ?? 3); i++) {
        const started = performance.now();
        const sockets = await io.fetchSockets();
        durations.push(performance.now() - started);
        count = sockets.length;
        distinct = new Set(sockets.map((s) => s.id)).size;
      }
      return { durations: durations.map((v) => round(v, 1)), count, distinct };
    }
    case "broadcast": {
      const sentAt = hrNow();
      io.emit("b", `b:${sentAt}`);
      return { sentAt, callMs: round(hrNow() - sentAt) };
    }
    default:
      return { error: `unknown command ${command.cmd}` };
  }
});

process.on("SIGTERM", () => process.exit(0));
