import { EventEmitter } from "node:events";
import { create } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { LogLevels } from "consola";
import { type Command, CommandSchema, type Custom, NetSyncService } from "../../gen/netsync/v1/netsync_pb.js";
import { Code, codeName } from "../code.js";
import { DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { type ClientBidiCall, openBidi } from "../grpc-adapter.js";
import { formatLabels, type Labels } from "../labels.js";
import { getLogger, type Logger } from "../logger.js";
import { type ResolvedSlaveOptions, resolveSlaveOptions, type SlaveOptions } from "../options.js";
import { clientCredentials, tokenMetadata } from "../server/auth.js";
import { LABELS_METADATA_KEY, SLAVE_ID_METADATA_KEY } from "../wire.js";
import { Backoff } from "./backoff.js";
import { CommandJournal } from "./command-journal.js";
import { CommandLog, type CommandResult } from "./command-log.js";
import { type Refusal, refusalOf, retryDelay } from "./refusal.js";

export type SlaveState = "idle" | "connecting" | "open" | "backoff" | "closed";

export interface SlaveEvents {
  /** A stream to the master is open; `id` is the id the master registered. */
  connected: [{ id: string }];
  /** The stream was lost; a reconnect follows unless the slave is closing. */
  disconnected: [{ reason: string; code: Code | undefined }];
  /** A Custom command arrived (emitted before the handler runs). */
  command: [Custom];
  /** The slave gave up (its credentials were refused `maxAuthRefusals` times in a row) and is closed. */
  failed: [NetSyncError];
}

/** Upper bound on how long close() waits for the master to acknowledge the end of the stream. */
const CLOSE_WAIT_MS = 1_000;

/** One attempt at a stream: it owns its channel, call and read-deadline timer. */
interface Session {
  readonly client: grpc.Client;
  readonly call: ClientBidiCall<typeof CommandSchema, typeof CommandSchema>;
  lastHeard: number;
  opened: boolean;
  /** Received anything from the master: the backoff resets after such a session. */
  healthy: boolean;
  ended: boolean;
  readDeadline: NodeJS.Timeout | undefined;
}

/**
 * A slave: keeps one stream open to the master, answers every Ping with a
 * Pong at once, hands Custom commands to its handler, and reconnects with
 * backoff whenever the stream is lost or the master falls silent.
 */
export class Slave extends EventEmitter<SlaveEvents> {
  /** Private in the language, not only in the types: it holds the token and TLS keys. */
  readonly #options: ResolvedSlaveOptions;
  private readonly log: Logger;
  private readonly debug: boolean;
  private readonly backoff: Backoff;
  private readonly channelOptions: grpc.ChannelOptions;
  /** Index in `masters` of the one to dial next. */
  private masterIndex = 0;
  private session: Session | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private assignedId: string | undefined;
  private currentState: SlaveState = "idle";
  /** Refusals of this slave's credentials since it last had a stream open. */
  private authRefusals = 0;
  /** Commands run recently, by command_id: one a master sends again after a failover runs once. */
  private readonly commands: CommandLog;

  constructor(options: SlaveOptions) {
    super();
    const resolved = resolveSlaveOptions(options);
    this.#options = resolved;
    this.log = resolved.logger ?? getLogger(resolved.id ? `slave ${resolved.id}` : "slave");
    this.debug = this.log.level >= LogLevels.debug;
    this.backoff = new Backoff(resolved.backoff);
    this.masterIndex = resolved.startAt;
    // Read at construction: a journal that cannot be opened is an error of the options, not of a later command.
    const journal = resolved.commandJournal ? new CommandJournal(resolved.commandJournal) : undefined;
    this.commands = new CommandLog(DEFAULTS.commandLog.entries, DEFAULTS.commandLog.maxAgeMs, undefined, journal);
    const { maxMessageBytes } = resolved;
    this.channelOptions = {
      // Each session gets a connection of its own: a dead one must not be shared back to us.
      "grpc.use_local_subchannel_pool": 1,
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      "grpc.enable_retries": 0,
      ...resolved.channelOptions,
    };
  }

  get state(): SlaveState {
    return this.currentState;
  }

  /** The labels this slave declares to the master. */
  get labels(): Labels {
    return this.#options.labels;
  }

  /** The master this slave is connected or connecting to. */
  get master(): string {
    return this.masters[this.masterIndex]!;
  }

  /** Every master this slave may connect to, in the order it tries them. */
  get masters(): readonly string[] {
    return this.#options.masters;
  }

  /** The id the master knows this slave by: the one given, or once connected the one the master assigned. */
  get id(): string | undefined {
    return this.assignedId ?? this.#options.id;
  }

  start(): void {
    if (this.currentState !== "idle") return;
    this.connect();
  }

  /** Ends the stream cleanly (the master sees a disconnect, not a timeout) and stops reconnecting. */
  async close(): Promise<void> {
    if (this.currentState === "closed") return;
    this.currentState = "closed";
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    // Commands still running record no result: after a restart, a repeat of one is answered "interrupted".
    this.commands.close();
    const session = this.session;
    if (!session || session.ended) return;
    if (session.opened) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, CLOSE_WAIT_MS);
        session.call.once("status", () => {
          clearTimeout(timer);
          resolve();
        });
        session.call.end();
      });
    }
    this.endSession(session, "slave closing");
  }

  private connect(): void {
    this.currentState = "connecting";
    const client = new grpc.Client(this.master, clientCredentials(this.#options.tls), this.channelOptions);
    const metadata = tokenMetadata(this.#options.token);
    if (this.#options.id !== undefined) metadata.set(SLAVE_ID_METADATA_KEY, this.#options.id);
    if (Object.keys(this.#options.labels).length > 0) metadata.set(LABELS_METADATA_KEY, formatLabels(this.#options.labels));
    const call = openBidi(client, NetSyncService.method.sync, metadata);
    const session: Session = {
      client,
      call,
      lastHeard: performance.now(),
      opened: false,
      healthy: false,
      ended: false,
      readDeadline: undefined,
    };
    this.session = session;

    call.on("metadata", (headers) => {
      if (session.ended) return;
      const id = headers.get(SLAVE_ID_METADATA_KEY)[0];
      this.assignedId = typeof id === "string" ? id : this.#options.id;
      session.opened = true;
      this.authRefusals = 0;
      session.lastHeard = performance.now();
      this.currentState = "open";
      this.log.info(`connected to ${this.master} as ${this.assignedId}`);
      this.emit("connected", { id: this.assignedId ?? "" });
    });
    call.on("data", (command: Command) => this.onCommand(session, command));
    call.on("error", (err: grpc.ServiceError) => {
      this.endSession(session, `${codeName(err.code)}: ${err.details || err.message}`, err.code, refusalOf(err));
    });
    call.on("end", () => this.endSession(session, "master ended the stream"));
    this.armReadDeadline(session, this.#options.masterTimeout);
  }

  /**
   * The read deadline: if the master sends nothing (not even a Ping) for
   * masterTimeout, the stream is presumed dead even if TCP says otherwise.
   */
  private armReadDeadline(session: Session, delay: number): void {
    session.readDeadline = setTimeout(() => {
      const silent = performance.now() - session.lastHeard;
      if (silent < this.#options.masterTimeout) {
        this.armReadDeadline(session, this.#options.masterTimeout - silent);
        return;
      }
      this.log.warn(`no message from the master for ${Math.round(silent)} ms; dropping the stream`);
      this.endSession(session, `master silent for ${Math.round(silent)} ms`, Code.DEADLINE_EXCEEDED);
    }, delay);
  }

  private onCommand(session: Session, command: Command): void {
    if (session.ended) return;
    session.lastHeard = performance.now();
    if (!session.healthy) {
      session.healthy = true;
      this.backoff.reset();
    }
    switch (command.kind.case) {
      case "ping": {
        const { seq } = command.kind.value;
        session.call.write(create(CommandSchema, { kind: { case: "pong", value: { seq } } }));
        if (this.debug) this.log.debug(`ping ${seq} answered`);
        return;
      }
      case "custom": {
        const custom = command.kind.value;
        const first = custom.commandId ? this.commands.get(custom.commandId) : undefined;
        if (first) {
          // A repeat (a master sent it again after a failover): answer with the first run's result, do not run it twice.
          if (this.debug) this.log.debug(`command ${custom.commandId} already ran; not running it again`);
          void first.then((result) => this.reply(session, custom, result));
          return;
        }
        // Run the handler on a later turn, so neither its time nor its errors stand between a Ping and its Pong.
        const result = new Promise<CommandResult>((resolve) => setImmediate(() => resolve(this.runHandler(custom))));
        // Logged (and journaled) before anyone hears of the run: a process killed in between has not run it.
        if (custom.commandId) this.commands.add(custom.commandId, result);
        this.emit("command", custom);
        void result.then((r) => this.reply(session, custom, r));
        return;
      }
      default:
        return;
    }
  }

  /** Runs the handler: its result, or its error as the Reply's error. */
  private async runHandler(custom: Custom): Promise<CommandResult> {
    const handler = this.#options.onCommand;
    try {
      const value: unknown = handler ? await handler(custom, { slaveId: this.id ?? "" }) : undefined;
      return { case: "data", value: typeof value === "string" ? value : value === undefined ? "" : JSON.stringify(value) };
    } catch (err) {
      const message = NetSyncError.from(err).message;
      this.log.error(`command handler failed: ${message}`);
      return { case: "error", value: message };
    }
  }

  /** When the command asked for a reply, sends `result` back on the stream the command came on. */
  private reply(session: Session, custom: Custom, result: CommandResult): void {
    if (custom.requestId === 0n) return;
    if (session.ended) {
      this.log.warn(`reply to request ${custom.requestId} dropped: the stream it came on has ended`);
      return;
    }
    session.call.write(create(CommandSchema, { kind: { case: "reply", value: { requestId: custom.requestId, result } } }));
  }

  private endSession(session: Session, reason: string, code?: Code, refusal?: Refusal): void {
    if (session.ended) return;
    session.ended = true;
    clearTimeout(session.readDeadline);
    session.call.cancel();
    session.client.close();
    if (this.session === session) this.session = undefined;
    if (session.opened) {
      if (this.currentState === "closed") this.log.info("disconnected from the master");
      else this.log.warn(`lost the master: ${reason}`);
      this.emit("disconnected", { reason, code });
    }
    if (this.currentState === "closed") return;
    if (!session.opened && refusal?.kind === "credentials") this.onCredentialsRefused(reason);
    else this.scheduleReconnect(session.opened ? undefined : reason, refusal);
  }

  /** The master refused who this slave is: say so as an error, wait long, and give up after maxAuthRefusals in a row. */
  private onCredentialsRefused(reason: string): void {
    const refused = ++this.authRefusals;
    const { maxAuthRefusals, authRetryInterval } = this.#options;
    const cause =
      `the master at ${this.master} refused this slave's credentials (${reason}); ` +
      "check its token (--token-file or $NETSYNC_TOKEN) and, with mTLS, its client certificate";
    if (maxAuthRefusals > 0 && refused >= maxAuthRefusals) {
      this.log.error(`${cause}; giving up after ${refused} refusal${refused === 1 ? "" : "s"} in a row`);
      this.currentState = "closed";
      this.emit(
        "failed",
        new NetSyncError(
          `gave up: the master refused this slave's credentials ${refused} times in a row (${reason})`,
          Code.UNAUTHENTICATED,
        ),
      );
      return;
    }
    // ±25 %, so a fleet whose token was rotated under it does not come back in one burst.
    const delay = Math.round(authRetryInterval * (0.75 + 0.5 * Math.random()));
    const left = maxAuthRefusals > 0 ? `refusal ${refused} of ${maxAuthRefusals} before giving up` : "retrying forever";
    this.retryAfter(delay, (next) => this.log.error(`${cause}; retrying${next} in ${formatSeconds(delay)} (${left})`));
  }

  private scheduleReconnect(failure: string | undefined, refusal?: Refusal): void {
    const lost = this.master;
    // A master that said when to come back is believed (plus jitter, so those it refused together do not return
    // together); the backoff is for failures that say nothing.
    const delay = refusal?.retryAfterMs !== undefined ? retryDelay(refusal.retryAfterMs, this.#options.retryJitter) : this.backoff.next();
    this.retryAfter(delay, (next) => {
      if (refusal?.kind === "duplicate")
        this.log.warn(`the master at ${lost} refused this slave (${failure}); retrying${next} in ${formatSeconds(delay)}`);
      else if (failure) this.log.info(`cannot reach the master at ${lost} (${failure}); retrying${next} in ${delay} ms`);
      else this.log.info(`reconnecting${next} in ${delay} ms`);
    });
  }

  /** Moves on to the next master and dials it after `delay` ms; `announce` is told " to <master>" when there are several. */
  private retryAfter(delay: number, announce: (next: string) => void): void {
    // With several masters, every loss moves on to another one, picked at random: the slaves of a master
    // that died spread over the survivors instead of all landing on the next entry of a shared list.
    const others = this.masters.length - 1;
    if (others > 0) this.masterIndex = (this.masterIndex + 1 + Math.floor(Math.random() * others)) % this.masters.length;
    this.currentState = "backoff";
    announce(this.masters.length > 1 ? ` to ${this.master}` : "");
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.currentState === "backoff") this.connect();
    }, delay);
  }
}

function formatSeconds(ms: number): string {
  return ms < 1_000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}
