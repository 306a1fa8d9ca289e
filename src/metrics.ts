import * as http from "node:http";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { ClusterObserver, ClusterStats } from "./cluster/stats.js";
import type { MasterObserver, MasterStats } from "./fleet/stats.js";

const RTT_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/**
 * Prometheus metrics of one master, in a registry of their own (not
 * prom-client's global one, so several masters can live in one process).
 * Counters are read from the master's totals when scraped, so the heartbeat
 * path pays nothing for them.
 */
export class MasterMetrics implements MasterObserver, ClusterObserver {
  readonly registry = new Registry();
  private readonly rttHistogram: Histogram;
  private readonly replyHistogram: Histogram;
  private readonly routedHistogram: Histogram | undefined;
  private server: http.Server | undefined;

  /** `clusterStats` only in cluster mode: it adds the netsync_cluster_* metrics (read while the node exists, else zero). */
  constructor(stats: () => MasterStats, clusterStats?: () => ClusterStats | undefined) {
    const registers = [this.registry];
    const counter = (name: string, help: string, read: (s: MasterStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(read(stats()));
        },
      });
    const byReason = (name: string, help: string, read: (s: MasterStats) => Record<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: ["reason"],
        registers,
        collect() {
          this.reset();
          for (const [reason, count] of Object.entries(read(stats()))) this.inc({ reason }, count);
        },
      });
    new Gauge({
      name: "netsync_slaves_connected",
      help: "Slaves with an open stream",
      registers,
      collect() {
        this.set(stats().connected);
      },
    });
    counter("netsync_connections_total", "Slave streams accepted", (s) => s.connectionsTotal);
    counter("netsync_pings_sent_total", "Pings written to slave streams", (s) => s.pingsSent);
    counter("netsync_pongs_received_total", "Pongs received from slaves", (s) => s.pongsReceived);
    counter("netsync_commands_sent_total", "Custom commands written to slave streams", (s) => s.commandsSent);
    byReason("netsync_evictions_total", "Slaves evicted, by reason", (s) => s.evictions);
    byReason("netsync_disconnects_total", "Slaves whose stream ended, by reason", (s) => s.disconnects);
    byReason(
      "netsync_admission_refused_total",
      "New slave streams refused before registration, by reason: rate (arriving faster than admitted), duplicate_id (id cooling down)",
      (s) => s.refused,
    );
    this.rttHistogram = new Histogram({
      name: "netsync_ping_rtt_seconds",
      help: "Ping to Pong round-trip time",
      buckets: RTT_BUCKETS,
      registers,
    });
    this.replyHistogram = new Histogram({
      name: "netsync_reply_latency_seconds",
      help: "Time from a request to a slave until its reply",
      buckets: [...RTT_BUCKETS, 5, 10, 30],
      registers,
    });
    if (clusterStats) this.routedHistogram = this.clusterMetrics(clusterStats);
  }

  private clusterMetrics(read: () => ClusterStats | undefined): Histogram {
    const registers = [this.registry];
    const gauge = (name: string, help: string, pick: (s: ClusterStats) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const s = read();
          this.set(s ? pick(s) : 0);
        },
      });
    const counter = (name: string, help: string, pick: (s: ClusterStats) => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          const s = read();
          if (s) this.inc(pick(s));
        },
      });
    const byLabel = (name: string, help: string, label: string, pick: (s: ClusterStats) => Record<string, number>) =>
      new Counter({
        name,
        help,
        labelNames: [label],
        registers,
        collect() {
          this.reset();
          const s = read();
          if (s) for (const [value, count] of Object.entries(pick(s))) this.inc({ [label]: value }, count);
        },
      });
    gauge("netsync_cluster_connected", "1 while this master is connected to the cluster's NATS, else 0", (s) => s.connected);
    gauge("netsync_cluster_masters", "Masters of the cluster known alive, this one included", (s) => s.mastersSeen);
    byLabel(
      "netsync_cluster_routed_total",
      "Sends and requests routed to a slave on another master, by outcome",
      "outcome",
      (s) => s.routed,
    );
    counter(
      "netsync_cluster_rerouted_total",
      "Routed sends and requests asked again because the answering master had just released the slave's route",
      (s) => s.rerouted,
    );
    byLabel(
      "netsync_cluster_routed_via_total",
      "Sends of routed calls by where they went: the holder the newest claim names, or the slave's own subject (no live holder known)",
      "via",
      (s) => s.routedVia,
    );
    counter(
      "netsync_cluster_route_fenced_total",
      "Routed calls sent again to a slave's new holder because its claim arrived while the old holder had not answered",
      (s) => s.fenced,
    );
    counter(
      "netsync_cluster_route_late_total",
      "Routed calls refused here because they arrived after their deadline (this master was stalled)",
      (s) => s.late,
    );
    counter("netsync_cluster_served_total", "Routed sends and requests served here for another master", (s) => s.served);
    counter(
      "netsync_cluster_job_batches_total",
      "Jobs' batches sent to holding masters, each one message carrying the command for many of that master's slaves",
      (s) => s.batches,
    );
    counter(
      "netsync_cluster_replacements_total",
      "Local streams ended because a newer one of the same id is on another master",
      (s) => s.replacements,
    );
    counter("netsync_cluster_claims_published_total", "Claims of held slave ids this master published", (s) => s.claimsPublished);
    counter(
      "netsync_cluster_claims_heard_total",
      "Claims this master heard: its own, other holders' of its ids, and of ids it waited on (not the fleet's)",
      (s) => s.claimsHeard,
    );
    counter("netsync_cluster_claims_damped_total", "Claims of an id held back because it was claimed too often", (s) => s.claimsDamped);
    counter("netsync_cluster_disconnects_total", "Times the NATS connection was lost", (s) => s.disconnects);
    return new Histogram({
      name: "netsync_cluster_routed_latency_seconds",
      help: "Time of a send or request routed to another master, by outcome",
      labelNames: ["outcome"],
      buckets: [0.00025, ...RTT_BUCKETS, 5, 10, 30],
      registers,
    });
  }

  routedLatency(ms: number, outcome: string): void {
    this.routedHistogram?.observe({ outcome }, ms / 1000);
  }

  rtt(ms: number): void {
    this.rttHistogram.observe(ms / 1000);
  }

  replyLatency(ms: number): void {
    this.replyHistogram.observe(ms / 1000);
  }

  /** Serves the Prometheus text format on GET /metrics; resolves with the bound port. */
  async listen(port: number, host: string): Promise<number> {
    const server = http.createServer((req, res) => {
      if (req.method !== "GET" || req.url?.split("?")[0] !== "/metrics") {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found; try /metrics\n");
        return;
      }
      this.registry.metrics().then(
        (text) => res.writeHead(200, { "content-type": this.registry.contentType }).end(text),
        (err: Error) => res.writeHead(500, { "content-type": "text/plain" }).end(`${err.message}\n`),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, host, () => resolve());
    });
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
