import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "../support/net.js";
import { waitFor } from "../support/wait.js";

export interface NatsServerOptions {
  /** Require this token (`--auth`). */
  token?: string;
  /** Port to use; default a free one. */
  port?: number;
  /** Serve TLS only, with this certificate and key (PEM file paths). */
  tls?: { cert: string; key: string };
  /** A configuration file (`-c`), e.g. operator mode; the address and port flags still apply. */
  config?: string;
  /** Enable JetStream (`-js`), storing in a temporary directory kept across kill() and start() (`-sd`), removed by removeStore(). */
  jetstream?: boolean;
}

/**
 * One `nats-server` process for a test suite, on 127.0.0.1 and a port that
 * stays the same across kill() and start(), so clients reconnect to it.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private frozen = false;
  port = 0;
  /** JetStream's store directory (with `jetstream`), the same for every start() of this server. */
  storeDir: string | undefined;

  constructor(private readonly options: NatsServerOptions = {}) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== undefined;
  }

  /** Picks the port now (a free one), so clients can be pointed at a server not started yet. */
  async reservePort(): Promise<number> {
    if (this.port === 0) this.port = this.options.port ?? (await freePort());
    return this.port;
  }

  /** Starts the server (on the same port as before, if it ran) and resolves once it accepts clients. */
  async start(): Promise<void> {
    if (this.child) return;
    if (this.port === 0) this.port = this.options.port ?? (await freePort());
    const args = this.options.config ? ["-c", this.options.config] : [];
    args.push("-a", "127.0.0.1", "-p", String(this.port));
    if (this.options.token) args.push("--auth", this.options.token);
    if (this.options.tls) args.push("--tls", "--tlscert", this.options.tls.cert, "--tlskey", this.options.tls.key);
    if (this.options.jetstream) {
      this.storeDir ??= mkdtempSync(join(tmpdir(), "netsync-js-"));
      args.push("-js", "-sd", this.storeDir);
    }
    const child = spawn("nats-server", args, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start within 5 s:\n${log}`)), 5_000);
      child.stderr!.on("data", (chunk: Buffer) => {
        log += chunk.toString();
        if (log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${log}`));
      });
    });
    child.stderr!.resume();
    child.removeAllListeners("exit");
    child.once("exit", () => {
      if (this.child === child) this.child = undefined;
    });
  }

  /** Ends the server with `signal` (SIGKILL: a crash) and waits until it is gone. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (this.frozen) this.thaw();
    const exited = once(child, "exit");
    child.kill(signal);
    await exited;
    this.child = undefined;
  }

  /**
   * Freezes the server (SIGSTOP): its sockets stay open but nothing answers.
   * Resolves once every thread is stopped: on a loaded machine a thread of
   * nats-server was seen to route a request 0.7 ms after kill() returned.
   */
  async freeze(): Promise<void> {
    const child = this.child;
    if (!child?.pid) return;
    child.kill("SIGSTOP");
    this.frozen = true;
    const pid = child.pid;
    await waitFor(() => allThreadsStopped(pid), 2_000, "nats-server to stop after SIGSTOP");
  }

  /** Reloads the configuration file (SIGHUP), as an operator does after editing it; clients stay connected. */
  reload(): void {
    this.child?.kill("SIGHUP");
  }

  /** Thaws a frozen server (SIGCONT). */
  thaw(): void {
    if (!this.child || !this.frozen) return;
    this.child.kill("SIGCONT");
    this.frozen = false;
  }

  /** Deletes JetStream's store directory (the server should be stopped). */
  removeStore(): void {
    if (this.storeDir) rmSync(this.storeDir, { recursive: true, force: true });
    this.storeDir = undefined;
  }

  /** kill() then start() on the same port. */
  async restart(): Promise<void> {
    await this.kill();
    await this.start();
  }
}

/** Skips a suite when nats-server is not installed (CI installs it; see bench/install-nats.sh). */
export async function haveNatsServer(): Promise<boolean> {
  const child = spawn("nats-server", ["--version"], { stdio: "ignore" });
  const [code] = (await Promise.race([once(child, "exit"), once(child, "error").then(() => [1])])) as [number | null];
  return code === 0;
}

/** Whether every thread of `pid` is in state T (stopped), read from /proc. */
export function allThreadsStopped(pid: number): boolean {
  return readdirSync(`/proc/${pid}/task`).every((task) => {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/task/${task}/stat`, "utf8");
    } catch {
      return true; // the thread ended
    }
    // The state follows the parenthesised command name, which may itself hold spaces.
    return stat[stat.lastIndexOf(")") + 2] === "T";
  });
}
