import { type Labels, parseLabels } from "../../labels.js";
import { getLogger } from "../../logger.js";
import type { CommandHandler } from "../../options.js";
import { type ExecHandler, execHandler } from "../../slave/exec.js";
import { Slave } from "../../slave/slave.js";
import { formatDuration } from "../duration.js";
import { runUntilStopped } from "../run.js";
import { type ClientSecurityFlags, clientSecurity, TOKEN_ENV } from "../security.js";
import { UsageError } from "../usage.js";

export type SlaveFlags = {
  master: string[];
  id?: string;
  label: string[];
  masterTimeout: number;
  maxAuthRefusals: number;
  retryForever?: boolean;
  commandJournal?: string;
  exec?: string;
  execTimeout: number;
  execConcurrency: number;
  execQueue: number;
} & ClientSecurityFlags;

/**
 * `netsync slave`: answers pings until SIGINT/SIGTERM; rejects (exit 1) once the master refused its credentials too often.
 * With --exec, each custom command runs the program with `execArgs` (src/slave/exec.ts).
 */
export async function runSlave(opts: SlaveFlags, execArgs: string[] = []): Promise<void> {
  let slave: Slave;
  const {
    tlsCa,
    tlsCert,
    tlsKey,
    tokenFile,
    label,
    retryForever: _,
    exec: program,
    execTimeout,
    execConcurrency,
    execQueue,
    ...rest
  } = opts;
  const security = clientSecurity({ tlsCa, tlsCert, tlsKey, tokenFile });
  let labels: Labels;
  try {
    // Label values cannot hold commas, so joining the flags is lossless; a bad one is named in the error.
    labels = parseLabels(label.join(","));
  } catch (e) {
    throw new UsageError(`--label: ${(e as Error).message}`);
  }
  let exec: ExecHandler | undefined;
  if (program !== undefined) {
    // The slave's token is its own credential: the program does not inherit it from the environment.
    const { [TOKEN_ENV]: _token, ...env } = process.env;
    try {
      exec = execHandler({ program, args: execArgs, timeout: execTimeout, concurrency: execConcurrency, queue: execQueue, env });
    } catch (e) {
      throw new UsageError(`--exec: ${(e as Error).message}`);
    }
  }
  const onCommand: CommandHandler = exec ?? ((command, { slaveId }) => getLogger(`slave ${slaveId}`).info(`command: ${command.data}`));
  try {
    slave = new Slave({ ...rest, ...security, labels, onCommand });
  } catch (e) {
    const message = (e as Error).message;
    throw new UsageError(message.startsWith("cannot open the command journal") ? `--command-journal: ${message}` : `--id: ${message}`);
  }
  if (exec) {
    const line = [program, ...execArgs].map((word) => JSON.stringify(word)).join(" ");
    getLogger("netsync").info(
      `--exec: every custom command runs ${line} as this user (timeout ${formatDuration(execTimeout)}, ` +
        `${execConcurrency} at once, ${execQueue} waiting)`,
    );
  }
  // The slave has logged why it gave up; the rejection makes main() return 1 (and nothing keeps the process alive).
  const failed = new Promise<never>((_, reject) => slave.once("failed", reject));
  try {
    await Promise.race([
      runUntilStopped(async () => {
        slave.start();
        return async () => {
          // First the programs, so the commands they leave unfinished are answered with an error before the stream ends.
          await exec?.close();
          await slave.close();
        };
      }),
      failed,
    ]);
  } finally {
    await exec?.close();
  }
}
