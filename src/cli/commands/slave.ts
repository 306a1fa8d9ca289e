import { getLogger } from "../../logger.js";
import { Slave } from "../../slave.js";
import { runUntilStopped } from "../run.js";
import { type ClientSecurityFlags, clientSecurity } from "../security.js";
import { UsageError } from "../usage.js";

export type SlaveFlags = { master: string[]; id?: string; masterTimeout: number } & ClientSecurityFlags;

/** `netsync slave`: answers pings until SIGINT/SIGTERM. */
export async function runSlave(opts: SlaveFlags): Promise<void> {
  let slave: Slave;
  const { tlsCa, tlsCert, tlsKey, tokenFile, ...rest } = opts;
  const security = clientSecurity({ tlsCa, tlsCert, tlsKey, tokenFile });
  try {
    slave = new Slave({
      ...rest,
      ...security,
      onCommand: (command, { slaveId }) => getLogger(`slave ${slaveId}`).info(`command: ${command.data}`),
    });
  } catch (e) {
    throw new UsageError(`--id: ${(e as Error).message}`);
  }
  await runUntilStopped(async () => {
    slave.start();
    return () => slave.close();
  });
}
