import { getLogger } from "../logger.js";
import { Master } from "../master.js";
import { Slave } from "../slave/slave.js";
import type { DemoOptions } from "./demo-options.js";
import { formatDuration } from "./duration.js";
import { TcpProxy } from "./tcp-proxy.js";

export { DEMO_DEFAULTS, type DemoOptions } from "./demo-options.js";

const NAMES = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"];

/** A running demo; stop() ends every part of it. */
export interface Demo {
  master: Master;
  stop(): Promise<void>;
}

/**
 * A master and a few slaves in one process. The last slave talks to the
 * master through a TcpProxy that later freezes its connection, so the
 * eviction (master side) and the reconnect (slave side) can be watched.
 */
export async function startDemo(options: DemoOptions): Promise<Demo> {
  const log = getLogger("demo");
  const master = new Master({
    host: options.host,
    port: options.port,
    heartbeatInterval: options.heartbeatInterval,
    heartbeatTimeout: options.heartbeatTimeout,
  });
  const port = await master.listen();
  const proxy = new TcpProxy({ host: options.host, port });
  const proxyPort = await proxy.listen(options.host);
  log.info(`master on ${master.address}; attach your own slave with: npx netsync slave --master ${master.address}`);

  const slaves: Slave[] = [];
  for (let i = 0; i < options.slaves; i++) {
    const id = NAMES[i] ?? `slave-${i + 1}`;
    const viaProxy = i === options.slaves - 1;
    const slave = new Slave({
      master: `${options.host}:${viaProxy ? proxyPort : port}`,
      id,
      masterTimeout: options.masterTimeout,
      onCommand: (command) => getLogger(`slave ${id}`).info(`received command: ${command.data}`),
    });
    slave.start();
    slaves.push(slave);
  }

  let round = 0;
  const broadcaster = setInterval(() => {
    round++;
    const fleet = master
      .slaves()
      .map((s) => `${s.id} rtt ${s.rttMs === undefined ? "-" : s.rttMs.toFixed(2)} ms (${s.pongsReceived}/${s.pingsSent} pongs)`)
      .join(", ");
    log.info(`heartbeats: ${fleet || "no slaves"}`);
    const reached = master.broadcast(JSON.stringify({ task: "report-status", round }));
    log.info(`broadcast #${round} written to ${reached} slaves`);
  }, options.broadcastEvery);

  const freezer = setTimeout(() => {
    log.info(
      `freezing ${NAMES[options.slaves - 1] ?? "the last slave"}'s connection: the master should evict it after ` +
        `${formatDuration(options.heartbeatTimeout)} of silence, and the slave should reconnect after ${formatDuration(options.masterTimeout)}`,
    );
    proxy.freeze();
  }, options.freezeAfter);

  return {
    master,
    async stop() {
      clearInterval(broadcaster);
      clearTimeout(freezer);
      await Promise.all(slaves.map((s) => s.close()));
      await proxy.close();
      await master.close();
    },
  };
}
