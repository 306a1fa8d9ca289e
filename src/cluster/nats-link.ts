import { EventEmitter } from "node:events";
import { readFile } from "node:fs/promises";
import {
  AuthorizationError,
  type ConnectionOptions,
  connect,
  credsAuthenticator,
  type NatsConnection,
  UserAuthenticationExpiredError,
} from "@nats-io/transport-node";
import type { ResolvedClusterOptions } from "./options.js";
import { redactServer } from "./options.js";

/** How long one connection attempt may take (TCP plus the server's INFO); a frozen server fails it. */
const CONNECT_TIMEOUT_MS = 2_000;

export type LinkState = "idle" | "connecting" | "connected" | "disconnected" | "closed";

export interface LinkEvents {
  /** Connected: `fresh` for a new connection (subscribe everything), false after nats.js reconnected one (it resubscribed). */
  up: [nc: NatsConnection, fresh: boolean];
  /** The connection was lost, or an attempt failed; `refused` when the server rejected the credentials. */
  down: [reason: string, refused: boolean];
}

/**
 * The one NATS connection of a cluster node and its lifecycle: it connects
 * in the background and never gives up (nats.js retries a lost connection
 * forever with maxReconnectAttempts -1, but gives up on a first connect and
 * on repeated auth errors, so this loops around it). Local serving never
 * waits for it.
 */
export class NatsLink extends EventEmitter<LinkEvents> {
  state: LinkState = "idle";
  nc: NatsConnection | undefined;
  private stopped = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly options: ResolvedClusterOptions,
    private readonly name: string,
  ) {
    super();
  }

  start(): void {
    if (this.loop || this.stopped) return;
    this.loop = this.run();
  }

  /** Closes the connection (flushing what was published) and stops reconnecting. */
  async close(): Promise<void> {
    this.stopped = true;
    this.state = "closed";
    this.wake?.();
    const nc = this.nc;
    this.nc = undefined;
    if (nc && !nc.isClosed()) await nc.close().catch(() => undefined);
    await this.loop;
  }

  private async connectionOptions(): Promise<ConnectionOptions> {
    const o = this.options;
    const options: ConnectionOptions = {
      servers: o.servers,
      name: this.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: o.reconnectTimeWait,
      reconnectJitter: 100,
      pingInterval: o.pingInterval,
      maxPingOut: o.maxPingOut,
      timeout: CONNECT_TIMEOUT_MS,
      ignoreAuthErrorAbort: false,
    };
    if (o.token !== undefined) options.token = o.token;
    if (o.user !== undefined) {
      options.user = o.user;
      options.pass = o.pass;
    }
    if (o.credsFile !== undefined) options.authenticator = credsAuthenticator(await readFile(o.credsFile));
    if (o.tlsCa !== undefined) options.tls = { ca: o.tlsCa.toString("utf8") };
    return options;
  }

  private async run(): Promise<void> {
    let options: ConnectionOptions;
    try {
      options = await this.connectionOptions();
    } catch (err) {
      // An unreadable creds file: a configuration error that retrying will not fix.
      this.state = "disconnected";
      this.emit("down", `cannot read the NATS credentials file: ${(err as Error).message}`, true);
      return;
    }
    while (!this.stopped) {
      this.state = "connecting";
      let nc: NatsConnection;
      try {
        nc = await connect(options);
      } catch (err) {
        if (this.stopped) return;
        const refused = isRefusal(err);
        this.state = "disconnected";
        this.emit("down", this.describeFailure(err, refused), refused);
        await this.sleep(refused ? this.options.authRetryInterval : this.options.reconnectTimeWait);
        continue;
      }
      if (this.stopped) {
        await nc.close().catch(() => undefined);
        return;
      }
      this.nc = nc;
      this.state = "connected";
      void this.watch(nc);
      this.emit("up", nc, true);
      const err = await nc.closed();
      if (this.nc === nc) this.nc = undefined;
      if (this.stopped) return;
      this.state = "disconnected";
      const refused = isRefusal(err);
      this.emit("down", err ? `connection closed: ${this.describeFailure(err, refused)}` : "connection closed", refused);
      await this.sleep(refused ? this.options.authRetryInterval : this.options.reconnectTimeWait);
    }
  }

  /** Follows nats.js's status events of one connection until it closes. */
  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.stopped || this.nc !== nc) return;
      switch (status.type) {
        case "disconnect":
          if (this.state === "connected") {
            this.state = "disconnected";
            this.emit("down", `lost ${redactServer(status.server)}`, false);
          }
          break;
        case "staleConnection":
          if (this.state === "connected") {
            this.state = "disconnected";
            this.emit("down", `server stopped answering pings (${this.options.maxPingOut} × ${this.options.pingInterval} ms)`, false);
          }
          break;
        case "reconnect":
          this.state = "connected";
          this.emit("up", nc, false);
          break;
        default:
          break;
      }
    }
  }

  /**
   * A failure as it may be logged. A refusal names the credentials file (its
   * path, never its content): an operator with several masters and .creds
   * files needs to know which one NATS rejected.
   */
  private describeFailure(err: unknown, refused: boolean): string {
    const text = describe(err);
    return refused && this.options.credsFile !== undefined ? `${text}; credentials file ${this.options.credsFile}` : text;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      timer.unref();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** Whether NATS rejected the credentials (as opposed to being unreachable). */
function isRefusal(err: unknown): boolean {
  return err instanceof AuthorizationError || err instanceof UserAuthenticationExpiredError;
}

/** An error as it may be logged: its message with any URL credentials masked. */
function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return redactServer(message);
}
