import { createRequire } from "node:module";
import { Argument, type Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { DEFAULTS, JOB_DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { checkTimeouts } from "../fleet/heartbeat.js";
import {
  getLogger,
  LOG_FORMAT_ENV,
  LOG_FORMATS,
  LOG_LEVEL_ENV,
  LOG_LEVEL_NAMES,
  resolveLogFormat,
  resolveLogLevel,
  setLogFormat,
  setLogLevel,
} from "../logger.js";
import type { MastersFlags, SendFlags, SlavesFlags } from "./commands/admin.js";
import type { JobFlags, JobsFlags, RunFlags } from "./commands/jobs.js";
import type { MasterFlags } from "./commands/master.js";
import type { SlaveFlags } from "./commands/slave.js";
// Only small modules load up front, so --version and --help start fast; each
// command's action imports what it runs (Master, Slave, AdminClient and with
// them grpc-js, protobuf-es, prom-client) when it runs.
import { completionScript, SHELLS, type Shell } from "./completion.js";
import { DEMO_DEFAULTS, type DemoOptions } from "./demo-options.js";
import { formatDuration, parseDuration } from "./duration.js";
import { checkSwitchEnvironment, EnvCommand } from "./env.js";
import { runUntilStopped } from "./run.js";
import { TOKEN_ENV } from "./security.js";
import { EXIT_USAGE, ExitStatus, UsageError } from "./usage.js";

export { TOKEN_ENV } from "./security.js";
export { EXIT_USAGE } from "./usage.js";

/**
 * The package's own package.json by self-reference ("exports" lists
 * "./package.json"), so the path holds from src/cli/ under tsx, from
 * dist/src/cli/ in a checkout, and from node_modules/netsync once installed.
 */
const { version } = createRequire(import.meta.url)("netsync/package.json") as { version: string };

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

const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[^:\s,]+):\d{1,5}$/;

function hostPort(value: string): string {
  if (!HOST_PORT.test(value)) throw new InvalidArgumentError("expected HOST:PORT");
  return value;
}

function hostPortList(value: string): string[] {
  const list = value.split(",").map((part) => part.trim());
  if (list.some((part) => !HOST_PORT.test(part))) throw new InvalidArgumentError("expected HOST:PORT[,HOST:PORT...]");
  return list;
}

/** A comma-separated list of NATS server URLs (credentials in them are allowed, and never logged). */
function natsUrlList(value: string): string[] {
  const list = value.split(",").map((part) => part.trim());
  if (list.some((part) => part === "" || /\s/.test(part)))
    throw new InvalidArgumentError("expected URL[,URL...], e.g. nats://127.0.0.1:4222");
  return list;
}

function addClientSecurityOptions(command: Command): Command {
  return command
    .option("--tls-ca <file>", "connect with TLS, trusting this CA (PEM) for the master's certificate")
    .option("--tls-cert <file>", "client certificate (PEM) for a master that requires mTLS")
    .option("--tls-key <file>", "client private key (PEM)")
    .option("--token-file <file>", `file holding the bearer token (default $${TOKEN_ENV})`);
}

/** The library's own check (options.ts), reported as a usage error that names the flags. */
function checkHeartbeatFlags(interval: number, timeout: number): void {
  try {
    checkTimeouts(interval, timeout);
  } catch (e) {
    if (!(e instanceof NetSyncError)) throw e;
    throw new UsageError(`--heartbeat-interval ${formatDuration(interval)}, --heartbeat-timeout ${formatDuration(timeout)}: ${e.message}`);
  }
}

export function buildProgram(): Command {
  const program = new EnvCommand("netsync")
    .description("Fleet liveness and command channel over gRPC bidi streams")
    .version(version, "-V, --version")
    .addOption(new Option("--log-level <level>", `log level (default info, or $${LOG_LEVEL_ENV})`).choices(LOG_LEVEL_NAMES))
    .addOption(new Option("--log-format <format>", `log format (default text, or $${LOG_FORMAT_ENV})`).choices(LOG_FORMATS))
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`${text.split("\n")[0]}\n`) });

  program.hook("preAction", (_program, actionCommand) => {
    checkSwitchEnvironment(actionCommand);
    try {
      const { logLevel, logFormat } = program.opts<{ logLevel?: string; logFormat?: string }>();
      setLogFormat(resolveLogFormat(logFormat));
      setLogLevel(resolveLogLevel(logLevel));
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
    .option("--no-reflection", "do not serve gRPC server reflection")
    .option("--metrics-port <port>", "serve Prometheus metrics on this port at /metrics (0: any free port)", integer(0, 65535))
    .option(
      "--http-port <port>",
      "serve the live dashboard, /metrics and its JSON/SSE API on this port (0: any free port)",
      integer(0, 65535),
    )
    .option("--dashboard-actions", "let the dashboard send commands to one slave or a selection (default: read-only)")
    .addOption(durationOption("--shutdown-grace <duration>", "on SIGINT/SIGTERM, how long streams may take to end", DEFAULTS.shutdownGrace))
    .option("--tls-cert <file>", "serve TLS with this certificate (PEM)")
    .option("--tls-key <file>", "private key (PEM) of --tls-cert")
    .option("--tls-client-ca <file>", "require client certificates from this CA (mTLS); their CN/SAN becomes the slave id")
    .option("--token-file <file>", `require this bearer token from slaves and admin clients (default $${TOKEN_ENV})`)
    .option("--name <id>", "this master's id, as admin responses and other masters of its cluster name it (default host:port)")
    .option(
      "--cluster <url,...>",
      "join a cluster of masters over these NATS servers, e.g. nats://127.0.0.1:4222 (nats://user:pass@host and nats://token@host work too)",
      natsUrlList,
    )
    .option("--cluster-name <name>", "the cluster's name; subjects are namespaced by it, so fleets can share one NATS (default netsync)")
    .option("--cluster-creds <file>", "NATS credentials file (JWT and NKey seed)")
    .option("--cluster-token-file <file>", "file holding the NATS authentication token")
    .option("--cluster-tls-ca <file>", "connect to NATS with TLS, trusting this CA (PEM)")
    .addOption(
      durationOption(
        "--cluster-ping-interval <duration>",
        "how often the NATS client pings its server; 2 missed mark the link dead (default 2s; 10s for fleets of a million: a server busy re-subscribing them answers late)",
      ),
    )
    .addOption(
      new Option(
        "--cluster-job-store <where>",
        "where a cluster keeps jobs: jetstream (required), memory (never), auto (JetStream when the NATS server has it)",
      ).choices(["auto", "jetstream", "memory"]),
    )
    .action(async (opts: MasterFlags) => {
      checkHeartbeatFlags(opts.heartbeatInterval, opts.heartbeatTimeout);
      const { runMaster } = await import("./commands/master.js");
      await runMaster(opts);
    });

  const slaveCommand = program
    .command("slave")
    .description("run a slave: answer pings, log custom commands (or run a program for each: --exec), reconnect when the master is lost")
    .argument("[args...]", "arguments of the --exec program (after -- when one starts with -)")
    .requiredOption(
      "--master <host:port,...>",
      "the master's address; with several, it starts at a random one and moves on to another on loss",
      hostPortList,
    )
    .option("--id <name>", "this slave's id (default: assigned by the master)")
    .option(
      "--label <key=value>",
      "a label to declare, e.g. region=eu (repeatable, at most 16)",
      (value: string, list: string[]) => [...list, value],
      [],
    )
    .addOption(durationOption("--master-timeout <duration>", "master silence after which the slave reconnects", DEFAULTS.masterTimeout))
    .addOption(
      new Option("--max-auth-refusals <n>", "exit 1 after the master refuses the credentials this many times in a row (0: never)")
        .argParser(integer(0, 1_000_000))
        .default(DEFAULTS.maxAuthRefusals),
    )
    .addOption(new Option("--retry-forever", "never exit on refused credentials (--max-auth-refusals 0)").implies({ maxAuthRefusals: 0 }))
    .option(
      "--command-journal <file>",
      "record the commands run (by command_id) in this file, so a command delivered again after this process restarts is not run twice",
    )
    .option(
      "--exec <program>",
      "run PROGRAM (no shell) for each custom command: the data on its stdin, its stdout the reply, a non-zero exit an error reply",
    )
    .addOption(durationOption("--exec-timeout <duration>", "kill an --exec program's process group after this long", DEFAULTS.exec.timeout))
    .addOption(
      new Option("--exec-concurrency <k>", "--exec programs running at once")
        .argParser(integer(1, 10_000))
        .default(DEFAULTS.exec.concurrency),
    )
    .addOption(
      new Option("--exec-queue <n>", "commands waiting for a free --exec run; more are refused at once")
        .argParser(integer(0, 1_000_000))
        .default(DEFAULTS.exec.queue),
    );
  addClientSecurityOptions(slaveCommand).action(async (args: string[], opts: SlaveFlags, command: Command) => {
    if (opts.exec === undefined) {
      if (args.length > 0) throw new UsageError(`unexpected argument '${args[0]}': arguments go with --exec PROGRAM`);
      // Given on the command line, an --exec-* flag without --exec is a mistake; from the environment it is a standing default.
      const stray = command.options.find((o) => o.long?.startsWith("--exec-") && command.getOptionValueSource(o.attributeName()) === "cli");
      if (stray) throw new UsageError(`${stray.long} goes with --exec`);
    }
    const { runSlave } = await import("./commands/slave.js");
    await runSlave(opts, args);
  });

  addClientSecurityOptions(
    program
      .command("slaves")
      .description("list a master's slaves, or in a cluster every master's (AdminService.ListSlaves)")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .option("--json", "print one JSON object per slave, one per line (the shape of the dashboard's /api/slaves)")
      .option("--selector <selector>", 'only slaves whose labels match, e.g. "region=eu,role!=db" or "tier in (a,b)"')
      .option("--closed", "also list recently closed slaves"),
  ).action(async (opts: SlavesFlags) => {
    const { listSlaves } = await import("./commands/admin.js");
    await listSlaves(opts);
  });

  addClientSecurityOptions(
    program
      .command("masters")
      .description("list the masters of a master's cluster (AdminService.ListMasters)")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .option("--json", "print one JSON object per master, one per line"),
  ).action(async (opts: MastersFlags) => {
    const { listMasters } = await import("./commands/admin.js");
    await listMasters(opts);
  });

  addClientSecurityOptions(
    program
      .command("send")
      .description("send a custom command to one slave (--to), to those a selector matches (--selector) or to all (--all)")
      .argument("<data>", "the command's data")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .addOption(new Option("--to <id>", "the target slave's id").conflicts(["all", "selector"]))
      .addOption(new Option("--selector <selector>", 'every slave whose labels match, e.g. "region=eu"').conflicts("all"))
      .addOption(new Option("--all", "send to every slave"))
      .option("--wait", "wait for the slave's reply and print it (with --to)")
      .addOption(durationOption("--timeout <duration>", "how long --wait waits", DEFAULTS.requestTimeout))
      .option("--json", "print the result as one JSON object: written, byMaster, unanswered and, with --wait, reply"),
  ).action(async (data: string, opts: SendFlags, command: Command) => {
    if (!opts.to && !opts.all && opts.selector === undefined)
      throw new UsageError("say whom to send to: --to ID, --selector SELECTOR or --all");
    if (!opts.to && opts.wait) throw new UsageError("--wait goes with --to: only one slave's reply can be waited for");
    // Given on the command line, a --timeout that nothing waits on is a mistake; from NETSYNC_TIMEOUT it is a standing default.
    if (!opts.wait && command.getOptionValueSource("timeout") === "cli")
      throw new UsageError("--timeout goes with --wait: without it nothing is waited for");
    const { send } = await import("./commands/admin.js");
    await send(data, opts);
  });

  addClientSecurityOptions(
    program
      .command("run")
      .description(
        "run a command as a job on slaves (--to, --selector or --all) and print each one's result as it comes; exit 0 only if every one answered ok (AdminService.Run)",
      )
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .requiredOption("--data <data>", "the command's data")
      .addOption(
        new Option("--to <id...>", "these slaves, connected or not (several after one --to, or --to repeated)").conflicts([
          "all",
          "selector",
        ]),
      )
      .addOption(new Option("--selector <selector>", 'the slaves whose labels match, e.g. "region=eu", fixed at start').conflicts("all"))
      .addOption(new Option("--all", "every slave connected at start"))
      .addOption(
        durationOption("--timeout <duration>", "how long each slave has to reply once the command reaches it", JOB_DEFAULTS.timeout),
      )
      .addOption(
        durationOption(
          "--deliver-within <duration>",
          `keep the command for a slave that is not connected and deliver it when it connects, for at most this long (at most ${formatDuration(JOB_DEFAULTS.maxDeliverWithin)}; default: not-connected at once)`,
        ),
      )
      .option("--json", "one JSON object per line: started, each result, summary"),
  ).action(async (opts: RunFlags) => {
    if (!opts.to && !opts.all && opts.selector === undefined)
      throw new UsageError("say which slaves to run on: --to ID..., --selector SELECTOR or --all");
    if (opts.selector !== undefined && opts.selector.trim() === "")
      throw new UsageError("--selector is empty: give a selector, or --all for every slave");
    if (opts.deliverWithin !== undefined && opts.deliverWithin > JOB_DEFAULTS.maxDeliverWithin)
      throw new UsageError(
        `--deliver-within ${formatDuration(opts.deliverWithin)}: at most ${formatDuration(JOB_DEFAULTS.maxDeliverWithin)} (slaves remember a command's id that long, so it runs once)`,
      );
    const { run } = await import("./commands/jobs.js");
    await run(opts);
  });

  addClientSecurityOptions(
    program
      .command("job")
      .description("show one recent job: what ran, each slave's result so far, the summary (AdminService.GetJob)")
      .argument("<id>", "the job's id, as run printed it")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .option("--json", "one JSON object for the job, then one per result"),
  ).action(async (id: string, opts: JobFlags) => {
    const { showJob } = await import("./commands/jobs.js");
    await showJob(id, opts);
  });

  addClientSecurityOptions(
    program
      .command("jobs")
      .description("list a master's recent jobs, newest first, with their counts (AdminService.ListJobs)")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .addOption(new Option("--limit <n>", "most jobs listed").argParser(integer(1, 10_000)).default(100))
      .option("--json", "one JSON object per job"),
  ).action(async (opts: JobsFlags) => {
    const { listJobs } = await import("./commands/jobs.js");
    await listJobs(opts);
  });

  addClientSecurityOptions(
    program
      .command("watch")
      .description("print the fleet's events as they happen, one line each, until Ctrl-C (AdminService.Watch)")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .option("--selector <selector>", "only events of slaves whose labels match (master events always pass)")
      .option("--kinds <kind,...>", "only these kinds: connected, disconnected, evicted, replaced, master_joined, master_left, snapshot")
      .option("--snapshot", "start with one 'snapshot' line per connected slave")
      .option("--json", "one JSON object per line (times in epoch ms)"),
  ).action(async (opts: import("./commands/watch.js").WatchFlags) => {
    const { watch } = await import("./commands/watch.js");
    await watch(opts);
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
    .action(async (opts: DemoOptions & { duration?: number }) => {
      checkHeartbeatFlags(opts.heartbeatInterval, opts.heartbeatTimeout);
      const { startDemo } = await import("./demo.js");
      await runUntilStopped(async () => {
        const demo = await startDemo(opts);
        return () => demo.stop();
      }, opts.duration);
    });

  program
    .command("completion")
    .description("print a shell completion script; load it with: source <(netsync completion bash)")
    .addArgument(new Argument("<shell>", "the shell").choices(SHELLS))
    .action((shell: Shell) => {
      process.stdout.write(completionScript(program, shell));
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
    if (e instanceof ExitStatus) return e.code;
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return EXIT_USAGE;
    }
    reportFailure(NetSyncError.from(e).message, program.opts<{ logFormat?: string }>().logFormat);
    return 1;
  }
}

/**
 * A failure as one line on stderr: "error: …" like a usage error, or, when
 * logs are JSON, one JSON log line, so a log shipper reading stderr parses it.
 */
function reportFailure(message: string, logFormat: string | undefined): void {
  let json = false;
  try {
    json = resolveLogFormat(logFormat) === "json";
  } catch {
    // A bad NETSYNC_LOG_FORMAT is reported as a usage error before any command runs.
  }
  if (json) getLogger("netsync").error(message);
  else process.stderr.write(`error: ${message}\n`);
}
