import { type Labels, parseLabels } from "../../labels.js";
import { getLogger } from "../../logger.js";
import { Slave } from "../../slave/slave.js";
import { runUntilStopped } from "../run.js";
import { type ClientSecurityFlags, clientSecurity } from "../security.js";
import { UsageError } from "../usage.js";

export type SlaveFlags = {
  master: string[];
  id?: string;
  label: string[];
  masterTimeout: number;
  maxAuthRefusals: number;
  retryForever?: boolean;
} & ClientSecurityFlags;

/** `netsync slave`: answers pings until SIGINT/SIGTERM; rejects (exit 1) once the master refused its credentials too often. */
export async function runSlave(opts: SlaveFlags): Promise<void> {
  let slave: Slave;
  const { tlsCa, tlsCert, tlsKey, tokenFile, label, retryForever: _, ...rest } = opts;
  const security = clientSecurity({ tlsCa, tlsCert, tlsKey, tokenFile });
  let labels: Labels;
  try {
    // Label values cannot hold commas, so joining the flags is lossless; a bad one is named in the error.
    labels = parseLabels(label.join(","));
  } catch (e) {
    throw new UsageError(`--label: ${(e as Error).message}`);
  }
  try {
    slave = new Slave({
      ...rest,
      ...security,
      labels,
      onCommand: (command, { slaveId }) => getLogger(`slave ${slaveId}`).info(`command: ${command.data}`),
    });
  } catch (e) {
    throw new UsageError(`--id: ${(e as Error).message}`);
  }
  // The slave has logged why it gave up; the rejection makes main() return 1 (and nothing keeps the process alive).
  const failed = new Promise<never>((_, reject) => slave.once("failed", reject));
  await Promise.race([
    runUntilStopped(async () => {
      slave.start();
      return () => slave.close();
    }),
    failed,
  ]);
}
