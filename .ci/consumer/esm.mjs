// Plain ESM consumer of the installed package: a master and a slave do a ping
// round trip and a job, AdminClient (netsync/admin) lists the slave, everything closes
// and the process exits by itself. A watchdog, unref'd so it never holds the
// process open, fails the run after 10 s (a hang, or a handle left open).

import { createRequire } from "node:module";
import { Code, Master, NetSyncError, Slave, silentLogger } from "netsync";
import { AdminClient } from "netsync/admin";

const watchdog = setTimeout(() => {
  console.error("esm consumer: no clean round trip within 10 s");
  process.exit(1);
}, 10_000);
watchdog.unref();

const { version } = createRequire(import.meta.url)("netsync/package.json");

const until = async (probe, what) => {
  while (!probe()) await new Promise((resolve) => setTimeout(resolve, 10));
  return what;
};

if (!(new NetSyncError("x", Code.INVALID_ARGUMENT) instanceof Error)) throw new Error("NetSyncError is not an Error");

const master = new Master({ host: "127.0.0.1", port: 0, heartbeatInterval: 50, heartbeatTimeout: 200, logger: silentLogger() });
const port = await master.listen();
const slave = new Slave({ master: `127.0.0.1:${port}`, id: "esm-consumer", onCommand: (c) => `ran ${c.data}`, logger: silentLogger() });
const connected = new Promise((resolve) => slave.once("connected", resolve));
slave.start();
await connected;
await until(() => master.slaves()[0]?.rttMs !== undefined);
const rtt = master.slaves()[0].rttMs;

// A job: one result for the connected slave, one for a target that is not connected.
const job = await master.run("uptime", { ids: ["esm-consumer", "absent"], timeout: 2_000 });
const results = [];
for await (const result of job) results.push(`${result.slaveId}:${result.status}`);
if (results.sort().join() !== "absent:not-connected,esm-consumer:ok") throw new Error(`job results: ${results}`);

const admin = new AdminClient(master.address);
const listed = await admin.listSlaves();
admin.close();
if (listed.slaves.map((s) => s.id).join() !== "esm-consumer") throw new Error(`ListSlaves: ${JSON.stringify(listed.slaves)}`);

await slave.close();
await master.close();
console.log(
  `esm: netsync ${version}: slave esm-consumer round trip ${rtt.toFixed(2)} ms; a job got ${results}; AdminClient listed it; closed`,
);
