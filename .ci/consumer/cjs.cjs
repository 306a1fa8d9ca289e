// CommonJS consumer: require() of the ESM package (Node >= 20.19 loads ESM
// without top-level await through require). Same round trip as esm.mjs, and
// the process must exit by itself; the unref'd watchdog fails it after 10 s.
const { Master, Slave, silentLogger } = require("netsync");
const { version } = require("netsync/package.json");

const watchdog = setTimeout(() => {
  console.error("cjs consumer: no clean round trip within 10 s");
  process.exit(1);
}, 10_000);
watchdog.unref();

async function run() {
  const master = new Master({ host: "127.0.0.1", port: 0, heartbeatInterval: 50, heartbeatTimeout: 200, logger: silentLogger() });
  const port = await master.listen();
  const slave = new Slave({ master: `127.0.0.1:${port}`, id: "cjs-consumer", logger: silentLogger() });
  const connected = new Promise((resolve) => slave.once("connected", resolve));
  slave.start();
  await connected;
  while (master.slaves()[0]?.rttMs === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
  const rtt = master.slaves()[0].rttMs;
  await slave.close();
  await master.close();
  console.log(`cjs: netsync ${version}: slave cjs-consumer round trip ${rtt.toFixed(2)} ms; closed`);
}

run().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
