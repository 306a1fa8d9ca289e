import { createRequire } from "node:module";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { Master } from "./master.js";
import { Slave } from "./slave.js";
import { startDemo, DEMO_DEFAULTS } from "./demo.js";
import { DEFAULTS } from "./options.js";
import { parseDuration, formatDuration } from "./duration.js";
import { getLogger, LOG_LEVEL_ENV, LOG_LEVEL_NAMES, resolveLogLevel, setLogLevel } from "./logger.js";
import { NetSyncError } from "./errors.js";

/** Exit code for bad flags or values, as most Unix tools use. */
export const EXIT_USAGE = 2;

const { version } = createRequire(import.meta.url)("../package.json") as { version: string };

function duration(value: string): number {
  try {
    return parseDuration(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** A duration flag whose help shows its default as "5s", not 5000. */
function durationOption(flags: string, description: string, defaultMs?: number): Option {
  const option = new Option(flags, description).argParser(duration);
  return defaultMs === undefined ? option : option.default(defaultMs, formatDuration(defaultMs));
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return n;
  };
}

function hostPort(value: string): string {
  if (!/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(value)) throw new InvalidArgumentError("expected HOST:PORT");
  return value;
}

class UsageError extends Error {}

/** Resolves when the process is asked to stop; a second signal exits at once. */
function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      process.once("SIGINT", () => process.exit(130));
      process.once("SIGTERM", () => process.exit(143));
      resolve(signal);
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
  });
}

/**
 * Starts something and runs until a signal (or `duration`, for demos and
 * smoke tests), then stops it. Signal handlers go in before the start, so
 * a signal during startup still stops cleanly.
 */
async function runUntilStopped(start: () => Promise<() => Promise<void>>, duration?: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const signal = untilSignal();
  const stop = await start();
  const reason = await Promise.race([
    signal.then((s) => `received ${s}`),
    new Promise<string>((resolve) => {
      if (duration !== undefined) timer = setTimeout(() => resolve(`ran for ${formatDuration(duration)}`), duration);
    }),
  ]);
  clearTimeout(timer);
  getLogger("netsync").info(`${reason}; stopping`);
  await stop();
}

function checkTimeouts(interval: number, timeout: number): void {
  if (timeout <= interval) {
    throw new UsageError(
      `--heartbeat-timeout (${formatDuration(timeout)}) must be greater than --heartbeat-interval (${formatDuration(interval)})`,
    );
  }
}

export function buildProgram(): Command {
  const program = new Command("netsync")
    .description("Fleet liveness and command channel over gRPC bidi streams")
    .version(version, "-V, --version")
    .addOption(
      new Option("--log-level <level>", `log level (default info, or $${LOG_LEVEL_ENV})`).choices(LOG_LEVEL_NAMES),
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.split("\n")[0] + "\n") });

  program.hook("preAction", () => {
    try {
      setLogLevel(resolveLogLevel(program.opts<{ logLevel?: string }>().logLevel));
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  });

  program
    .command("master")
    .description("run a master: serve slaves, ping them, evict the silent ones")
    .option("--host <host>", "address to listen on", DEFAULTS.host)
    .option("--port <port>", "port to listen on (0: any free port)", integer(0, 65535), DEFAULTS.port)
    .addOption(durationOption("--heartbeat-interval <duration>", "time between ping rounds", DEFAULTS.heartbeatInterval))
    .addOption(durationOption("--heartbeat-timeout <duration>", "silence after which a slave is evicted", DEFAULTS.heartbeatTimeout))
    .action(async (opts: { host: string; port: number; heartbeatInterval: number; heartbeatTimeout: number }) => {
      checkTimeouts(opts.heartbeatInterval, opts.heartbeatTimeout);
      const master = new Master(opts);
      await runUntilStopped(async () => {
        await master.listen();
        return () => master.close();
      });
    });

  program
    .command("slave")
    .description("run a slave: answer pings, log custom commands, reconnect when the master is lost")
    .requiredOption("--master <host:port>", "the master's address", hostPort)
    .option("--id <name>", "this slave's id (default: assigned by the master)")
    .addOption(durationOption("--master-timeout <duration>", "master silence after which the slave reconnects", DEFAULTS.masterTimeout))
    .action(async (opts: { master: string; id?: string; masterTimeout: number }) => {
      let slave: Slave;
      try {
        slave = new Slave({
          ...opts,
          onCommand: (command, { slaveId }) => getLogger(`slave ${slaveId}`).info(`command: ${command.data}`),
        });
      } catch (e) {
        throw new UsageError(`--id: ${(e as Error).message}`);
      }
      await runUntilStopped(async () => {
        slave.start();
        return () => slave.close();
      });
    });

  program
    .command("demo")
    .description("a master and three slaves in one process; one slave's link freezes to show an eviction")
    .option("--host <host>", "address to listen on", DEMO_DEFAULTS.host)
    .option("--port <port>", "master port (0: any free port)", integer(0, 65535), DEMO_DEFAULTS.port)
    .option("--slaves <n>", "number of slaves", integer(1, 8), DEMO_DEFAULTS.slaves)
    .addOption(durationOption("--heartbeat-interval <duration>", "time between ping rounds", DEMO_DEFAULTS.heartbeatInterval))
    .addOption(durationOption("--heartbeat-timeout <duration>", "silence after which a slave is evicted", DEMO_DEFAULTS.heartbeatTimeout))
    .addOption(durationOption("--master-timeout <duration>", "master silence after which a slave reconnects", DEMO_DEFAULTS.masterTimeout))
    .addOption(durationOption("--broadcast-every <duration>", "time between broadcast commands", DEMO_DEFAULTS.broadcastEvery))
    .addOption(durationOption("--freeze-after <duration>", "when the last slave's connection freezes", DEMO_DEFAULTS.freezeAfter))
    .addOption(durationOption("--duration <duration>", "stop after this long (default: until Ctrl-C)"))
    .action(async (opts: typeof DEMO_DEFAULTS & { duration?: number }) => {
      checkTimeouts(opts.heartbeatInterval, opts.heartbeatTimeout);
      await runUntilStopped(async () => {
        const demo = await startDemo(opts);
        return () => demo.stop();
      }, opts.duration);
    });

  return program;
}

/** Runs the CLI; resolves with the process exit code. */
export async function main(argv: string[] = process.argv): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp({ error: true });
      return EXIT_USAGE;
    }
    await program.parseAsync(argv);
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      return e.code === "commander.helpDisplayed" || e.code === "commander.version" ? 0 : EXIT_USAGE;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return EXIT_USAGE;
    }
    getLogger("netsync").error(NetSyncError.from(e).message);
    return 1;
  }
}
