/**
 * What one subscription costs: a Node client (the NATS client NetSync's
 * cluster core uses, @nats-io/transport-node) subscribes one subject per
 * slave the way a master does (`netsync.<cluster>.slave.<base64url id>`,
 * a plain subscription with a callback each), up to each count of `steps`, and
 * reports its heap and RSS after a forced GC at each step (run it with
 * --expose-gc). The orchestrator reads nats-server's side (RSS from /proc,
 * /varz) at the same points.
 *
 * Protocol: prints {"ev":"ready"}; each "next" command subscribes up to the
 * following step, then prints {"ev":"step","subs","heapMB","rssMB","ms"}.
 */
import { connect } from "@nats-io/transport-node";
import { Subjects } from "../../src/cluster/subjects.js";
import { childConfig, emit, onCommands, round } from "../lib/common.js";

const config = childConfig<{ natsUrl: string; steps: number[] }>();
const gc = (globalThis as { gc?: () => void }).gc;
const measure = () => {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { heapMB: round(m.heapUsed / 2 ** 20, 1), rssMB: round(m.rss / 2 ** 20, 1) };
};

const nc = await connect({ servers: config.natsUrl, name: "bench nats-subs" });
const subjects = new Subjects("netsync");
let next: () => void = () => undefined;
onCommands((command) => {
  if (command.cmd === "next") next();
  return {};
});
emit({ ev: "ready", ...measure() });
let subscribed = 0;
for (const target of config.steps) {
  await new Promise<void>((resolve) => (next = resolve));
  const started = performance.now();
  for (; subscribed < target; subscribed++) {
    nc.subscribe(subjects.slave(`g${Math.floor(subscribed / 5000)}-${subscribed % 5000}`), { callback: () => undefined });
    if (subscribed % 5000 === 4999) await nc.flush();
  }
  await nc.flush();
  emit({ ev: "step", subs: subscribed, ms: Math.round(performance.now() - started), ...measure() });
}
// Stay subscribed until the orchestrator has read the server side.
await new Promise<void>((resolve) => (next = resolve));
await nc.close();
process.exit(0);
