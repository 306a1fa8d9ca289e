/**
 * The NATS the million bench runs on: three nats-servers joined by routes
 * (one cluster), each with a monitoring port for /varz and /subsz, on free
 * ports of 127.0.0.1 that stay the same across a SIGKILL and a restart, so
 * the masters' clients reconnect to them as they would to a restarted node.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { freePort } from "../../test/support/net.js";
import { sleep } from "../lib/common.js";

export interface NatsNode {
  port: number;
  monitorPort: number;
  clusterPort: number;
  proc: ChildProcess | undefined;
}

/** What /varz says of one server, the fields the bench reads. */
export interface Varz {
  mem: number;
  cpu: number;
  connections: number;
  subscriptions: number;
  slow_consumers: number;
  in_msgs: number;
  out_msgs: number;
  in_bytes: number;
  out_bytes: number;
}

const NATS_BIN = process.env.NATS_SERVER ?? "nats-server";

export class NatsCluster {
  private constructor(readonly nodes: NatsNode[]) {}

  static async start(size = 3): Promise<NatsCluster> {
    const nodes: NatsNode[] = [];
    for (let i = 0; i < size; i++) {
      nodes.push({ port: await freePort(), monitorPort: await freePort(), clusterPort: await freePort(), proc: undefined });
    }
    const cluster = new NatsCluster(nodes);
    await cluster.startAll();
    return cluster;
  }

  /** Client URLs, one per server. */
  get urls(): string[] {
    return this.nodes.map((n) => `nats://127.0.0.1:${n.port}`);
  }

  /** The URLs a master on server `i` is given: its own first, then the others. */
  serversFor(i: number): string[] {
    const urls = this.urls;
    const own = i % urls.length;
    return [urls[own]!, ...urls.filter((_, j) => j !== own)];
  }

  async startAll(): Promise<void> {
    await Promise.all(this.nodes.map((node) => this.startNode(node)));
    await this.waitRoutes();
  }

  /** SIGKILLs every server and waits until each is gone. */
  async killAll(): Promise<void> {
    await this.signalAll("SIGKILL");
  }

  /** SIGTERM, for the end of the run (SIGKILL after 5 s). */
  async stop(): Promise<void> {
    await this.signalAll("SIGTERM", 5_000);
  }

  /** Sends `signal` to every running server and waits until each is gone, sending SIGKILL after `killAfterMs` if given. */
  private async signalAll(signal: NodeJS.Signals, killAfterMs?: number): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        const proc = node.proc;
        if (!proc || proc.exitCode !== null) return;
        const exited = once(proc, "exit");
        proc.kill(signal);
        const timer = killAfterMs === undefined ? undefined : setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
        await exited;
        clearTimeout(timer);
        node.proc = undefined;
      }),
    );
  }

  async varz(i: number): Promise<Varz> {
    return (await this.monitor(i, "varz")) as unknown as Varz;
  }

  async subscriptions(i: number): Promise<number> {
    return ((await this.monitor(i, "subsz")) as { num_subscriptions: number }).num_subscriptions;
  }

  /** Why the server's closed connections (clients and routes) were closed, counted by reason: a slow consumer shows here. */
  async closedReasons(i: number): Promise<Record<string, number>> {
    const connz = (await this.monitor(i, "connz?state=closed&limit=10000")) as { connections?: { reason?: string; name?: string }[] };
    const out: Record<string, number> = {};
    for (const c of connz.connections ?? []) {
      const key = `${c.reason ?? "?"}${c.name ? ` (${c.name})` : ""}`;
      out[key] = (out[key] ?? 0) + 1;
    }
    return out;
  }

  pid(i: number): number | undefined {
    return this.nodes[i]?.proc?.pid;
  }

  private async monitor(i: number, path: string): Promise<Record<string, unknown>> {
    const response = await fetch(`http://127.0.0.1:${this.nodes[i]!.monitorPort}/${path}`);
    return (await response.json()) as Record<string, unknown>;
  }

  private async startNode(node: NatsNode): Promise<void> {
    const routes = this.nodes.filter((n) => n !== node).map((n) => `nats://127.0.0.1:${n.clusterPort}`);
    const args = [
      "-a",
      "127.0.0.1",
      "-p",
      String(node.port),
      "-m",
      String(node.monitorPort),
      "--cluster_name",
      "million",
      "--cluster",
      `nats://127.0.0.1:${node.clusterPort}`,
      "--routes",
      routes.join(","),
    ];
    const proc = spawn(NATS_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
    node.proc = proc;
    let log = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`nats-server did not start within 10 s:\n${log}`)), 10_000);
      const onData = (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-4000);
        if (log.includes("Server is ready")) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stderr!.on("data", onData);
      proc.once("error", (err) => {
        clearTimeout(timer);
        reject(new Error(`cannot run ${NATS_BIN} (bash bench/install-nats.sh): ${err.message}`));
      });
      proc.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`nats-server exited with ${code}:\n${log}`));
      });
    });
    proc.removeAllListeners("exit");
  }

  /** Resolves once every server has a route to every other. */
  private async waitRoutes(): Promise<void> {
    const want = this.nodes.length - 1;
    const deadline = performance.now() + 15_000;
    while (performance.now() < deadline) {
      const counts = await Promise.all(this.nodes.map((_, i) => this.monitor(i, "routez").then((r) => Number(r.num_routes))));
      if (counts.every((c) => c >= want)) return;
      await sleep(100);
    }
    throw new Error("nats-servers did not form a cluster within 15 s");
  }
}
