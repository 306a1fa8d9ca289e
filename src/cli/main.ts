import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { Master } from "../master.js";
import { Slave } from "../slave.js";
import { startDemo, DEMO_DEFAULTS } from "./demo.js";
import { DEFAULTS } from "../options.js";
import { parseDuration, formatDuration } from "./duration.js";
import { toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ListSlavesResponseSchema, CloseReason, type Slave as SlaveMessage } from "../../gen/netsync/v1/admin_pb.js";
import { AdminClient } from "../admin-client.js";
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
import { NetSyncError } from "../errors.js";

/** Exit code for bad flags or values, as most Unix tools use. */
export const EXIT_USAGE = 2;

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

class UsageError extends Error {}

export const TOKEN_ENV = "NETSYNC_TOKEN";

function readPem(flag: string, path: string | undefined): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`${flag}: cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

/** The bearer token: --token-file, else $NETSYNC_TOKEN, else none. */
function resolveToken(tokenFile: string | undefined): string | undefined {
  const token = tokenFile !== undefined ? readPem("--token-file", tokenFile)!.toString("utf8").trim() : process.env[TOKEN_ENV];
  if (token === "") throw new UsageError(tokenFile !== undefined ? "--token-file: the file is empty" : `${TOKEN_ENV} is set but empty`);
  return token;
}

interface ClientSecurityFlags {
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  tokenFile?: string;
}

function addClientSecurityOptions(command: Command): Command {
  return command
    .option("--tls-ca <file>", "connect with TLS, trusting this CA (PEM) for the master's certificate")
    .option("--tls-cert <file>", "client certificate (PEM) for a master that requires mTLS")
    .option("--tls-key <file>", "client private key (PEM)")
    .option("--token-file <file>", `file holding the bearer token (default $${TOKEN_ENV})`);
}

function clientSecurity(flags: ClientSecurityFlags) {
  if ((flags.tlsCert === undefined) !== (flags.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
  const tls =
    flags.tlsCa !== undefined || flags.tlsCert !== undefined
      ? { ca: readPem("--tls-ca", flags.tlsCa), cert: readPem("--tls-cert", flags.tlsCert), key: readPem("--tls-key", flags.tlsKey) }
      : undefined;
  return { tls, token: resolveToken(flags.tokenFile) };
}

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
    .addOption(
      new Option("--log-format <format>", `log format (default text, or $${LOG_FORMAT_ENV})`).choices(LOG_FORMATS),
    )
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text.split("\n")[0] + "\n") });

  program.hook("preAction", () => {
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
    .addOption(durationOption("--shutdown-grace <duration>", "on SIGINT/SIGTERM, how long streams may take to end", DEFAULTS.shutdownGrace))
    .option("--tls-cert <file>", "serve TLS with this certificate (PEM)")
    .option("--tls-key <file>", "private key (PEM) of --tls-cert")
    .option("--tls-client-ca <file>", "require client certificates from this CA (mTLS); their CN/SAN becomes the slave id")
    .option("--token-file <file>", `require this bearer token from slaves and admin clients (default $${TOKEN_ENV})`)
    .action(async (opts: {
      host: string;
      port: number;
      heartbeatInterval: number;
      heartbeatTimeout: number;
      reflection: boolean;
      metricsPort?: number;
      shutdownGrace: number;
      tlsCert?: string;
      tlsKey?: string;
      tlsClientCa?: string;
      tokenFile?: string;
    }) => {
      checkTimeouts(opts.heartbeatInterval, opts.heartbeatTimeout);
      if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new UsageError("--tls-cert and --tls-key go together");
      if (opts.tlsClientCa !== undefined && opts.tlsCert === undefined) throw new UsageError("--tls-client-ca needs --tls-cert and --tls-key");
      const { tlsCert, tlsKey, tlsClientCa, tokenFile, ...rest } = opts;
      const master = new Master({
        ...rest,
        tls: tlsCert ? { cert: readPem("--tls-cert", tlsCert)!, key: readPem("--tls-key", tlsKey)!, clientCa: readPem("--tls-client-ca", tlsClientCa) } : undefined,
        token: resolveToken(tokenFile),
      });
      await runUntilStopped(async () => {
        await master.listen();
        return () => master.close();
      });
    });

  const slaveCommand = program
    .command("slave")
    .description("run a slave: answer pings, log custom commands, reconnect when the master is lost")
    .requiredOption("--master <host:port,...>", "the master's address; with several, the slave moves on to the next on loss", hostPortList)
    .option("--id <name>", "this slave's id (default: assigned by the master)")
    .addOption(durationOption("--master-timeout <duration>", "master silence after which the slave reconnects", DEFAULTS.masterTimeout));
  addClientSecurityOptions(slaveCommand)
    .action(async (opts: { master: string[]; id?: string; masterTimeout: number } & ClientSecurityFlags) => {
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
    });

  addClientSecurityOptions(
    program
      .command("slaves")
      .description("list a master's slaves (AdminService.ListSlaves)")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .option("--json", "print JSON (the ListSlavesResponse in proto JSON form)")
      .option("--closed", "also list recently closed slaves"),
  ).action(async (opts: { master: string; json?: boolean; closed?: boolean } & ClientSecurityFlags) => {
      await withAdmin(opts, async (admin) => {
        const response = await admin.listSlaves(opts.closed ?? false);
        if (opts.json) {
          process.stdout.write(JSON.stringify(toJson(ListSlavesResponseSchema, response), null, 2) + "\n");
          return;
        }
        process.stdout.write(slavesTable(response.slaves) + "\n");
        if (opts.closed) {
          const rows = response.closed.map((c) => [
            c.slave?.id ?? "",
            CloseReason[c.reason]?.toLowerCase() ?? String(c.reason),
            c.closedAt ? timestampDate(c.closedAt).toISOString() : "",
            c.details,
          ]);
          process.stdout.write("\n" + table(["CLOSED", "REASON", "AT", "DETAILS"], rows) + "\n");
        }
      });
    });

  addClientSecurityOptions(
    program
      .command("send")
      .description("send a custom command to one slave (--to) or to all (--all)")
      .argument("<data>", "the command's data")
      .requiredOption("--master <host:port>", "the master's address", hostPort)
      .addOption(new Option("--to <id>", "the target slave's id").conflicts("all"))
      .addOption(new Option("--all", "send to every slave"))
      .option("--wait", "wait for the slave's reply and print it (with --to)")
      .addOption(durationOption("--timeout <duration>", "how long --wait waits", DEFAULTS.requestTimeout)),
  ).action(
    async (data: string, opts: { master: string; to?: string; all?: boolean; wait?: boolean; timeout: number } & ClientSecurityFlags) => {
      if (!opts.to && !opts.all) throw new UsageError("say --to ID or --all");
      if (opts.all && opts.wait) throw new UsageError("--wait goes with --to, not --all");
      await withAdmin(opts, async (admin) => {
        if (opts.all) {
          process.stdout.write(`written to ${await admin.broadcast(data)} slaves\n`);
          return;
        }
        const response = await admin.send(opts.to!, data, opts.wait ? { timeout: opts.timeout } : undefined);
        const result = response.reply?.result;
        if (result?.case === "error") throw new NetSyncError(`slave ${opts.to} failed: ${result.value}`);
        process.stdout.write(result?.case === "data" ? result.value + "\n" : `written: ${response.written}\n`);
      });
    },
  );

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

async function withAdmin(opts: { master: string } & ClientSecurityFlags, fn: (admin: AdminClient) => Promise<void>): Promise<void> {
  const admin = new AdminClient(opts.master, clientSecurity(opts));
  try {
    await fn(admin);
  } finally {
    admin.close();
  }
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

function slavesTable(slaves: SlaveMessage[]): string {
  if (slaves.length === 0) return "no slaves connected";
  const now = Date.now();
  const ago = (t: SlaveMessage["lastSeen"]) => (t ? `${formatDuration(Math.max(0, now - timestampDate(t).getTime()))} ago` : "");
  const rows = slaves.map((s) => [
    s.id,
    s.peer,
    s.connectedAt ? timestampDate(s.connectedAt).toISOString() : "",
    ago(s.lastSeen),
    s.rtt ? `${(Number(s.rtt.seconds) * 1000 + s.rtt.nanos / 1e6).toFixed(2)} ms` : "-",
    String(s.pingsSent),
    String(s.pongsReceived),
  ]);
  return table(["ID", "PEER", "CONNECTED", "LAST SEEN", "RTT", "PINGS", "PONGS"], rows);
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
