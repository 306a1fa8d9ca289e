/**
 * The NATS "master": liveness done at the application level over a
 * nats-server (started by the orchestrator), since NATS's own PING/PONG is a
 * transport keepalive between each client and the server, invisible to any
 * other client. One connection; every interval it publishes one Ping on
 * "ns.ping" (the server fans it out to every slave), slaves answer on
 * "ns.pong" with their id, and the master evicts an id silent for `timeout`
 * (deadlines kept in a Map ordered by last-seen, checked every 10 ms, the
 * same algorithm as NetSync's scheduler). It cannot close an evicted slave's
 * connection: only the server or the client can.
 */
import { connect, type Msg, type NatsError } from "nats";
import { childConfig, emit, hrNow, onCommands, usage } from "../lib/common.js";
import { withPhases } from "../lib/probe.js";
import type { ServerConfig, ServerEvents } from "./types.js";

const config = childConfig<ServerConfig>();
const nc = await connect({ servers: config.natsUrl!, name: "master", noEcho: true, reconnect: false });
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const lastSeen = new Map<string, number>();
const events: ServerEvents = { evicted: [], lost: [] };

function seen(id: string): void {
  lastSeen.delete(id);
  lastSeen.set(id, performance.now());
}

nc.subscribe("ns.hello", { callback: (_err: NatsError | null, msg: Msg) => seen(decoder.decode(msg.data)) });
nc.subscribe("ns.pong", {
  callback: (_err: NatsError | null, msg: Msg) => {
    const id = decoder.decode(msg.data);
    // Only registered slaves: an evicted one stays evicted.
    if (lastSeen.has(id)) seen(id);
  },
});
nc.subscribe("ns.echo", { callback: (_err: NatsError | null, msg: Msg) => msg.respond(msg.data) });

let seq = 0;
setInterval(() => nc.publish("ns.ping", encoder.encode(`${++seq}`)), config.interval);
setInterval(() => {
  const now = performance.now();
  for (const [id, at] of lastSeen) {
    if (at + config.timeout > now) break;
    lastSeen.delete(id);
    events.evicted.push({ id, at: hrNow(), silentMs: now - at });
  }
}, 10);

emit({ ev: "ready" });

onCommands(
  withPhases((command) => {
    switch (command.cmd) {
      case "stats":
        return { connected: lastSeen.size, evicted: events.evicted.length, lost: 0, ...usage() };
      case "broadcast": {
        const sentAt = hrNow();
        nc.publish("ns.cmd", encoder.encode(`b:${sentAt}`));
        return { sentAt, callMs: hrNow() - sentAt, written: lastSeen.size };
      }
      case "events":
        return { ...events };
      default:
        return { error: `unknown command ${command.cmd}` };
    }
  }),
);

process.on("SIGTERM", () => process.exit(0));
