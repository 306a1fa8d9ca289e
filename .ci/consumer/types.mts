// A TypeScript consumer, type-checked (never run) against the shipped .d.ts
// with moduleResolution node16 and bundler: tsconfig.node16.json and
// tsconfig.bundler.json. `.mts` so node16 treats it as ESM in a package with
// no "type".
import { Code, DEFAULTS, type Labels, Master, type MasterOptions, NetSyncError, Slave, type SlaveInfo, type SlaveOptions } from "netsync";
import { AdminClient, type ListSlavesResponse } from "netsync/admin";

const options: MasterOptions = { host: "127.0.0.1", port: 0, heartbeatInterval: 50, heartbeatTimeout: DEFAULTS.heartbeatTimeout };
const master = new Master(options);
const port: number = await master.listen();
const slaveOptions: SlaveOptions = { master: `127.0.0.1:${port}`, id: "typed", labels: { region: "eu" } };
const slave = new Slave(slaveOptions);
slave.on("connected", ({ id }: { id: string }) => console.log(id));

const infos: SlaveInfo[] = master.slaves({ selector: "region=eu" });
const labels: Labels = infos[0]?.labels ?? {};
const rtts: Array<number | undefined> = infos.map((s) => s.rttMs);

function describe(e: unknown): string {
  if (e instanceof NetSyncError) {
    const code: Code = e.code;
    return code === Code.INVALID_ARGUMENT ? `bad argument: ${e.message}` : e.message;
  }
  return String(e);
}

const admin = new AdminClient(master.address, { token: undefined });
const listed: ListSlavesResponse = await admin.listSlaves({ includeClosed: true, selector: "region=eu" });
admin.close();
console.log(rtts, labels, listed.slaves.length, describe(new NetSyncError("x")));

// @ts-expect-error heartbeatInterval is a number of milliseconds
const wrong: MasterOptions = { heartbeatInterval: "5s" };
void wrong;
