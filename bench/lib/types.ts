/**
 * The ladder benchmark's shared types: its configuration and what one run of
 * one system at one N measures. Types only, so any bench file can import them
 * without pulling in (or circling back to) the code that fills them in.
 */
import type { Summary } from "./common.js";
import type { PhaseStats } from "./probe.js";
import type { SystemName } from "./systems.js";

export type { SystemName };

/** bench/run.ts's options, resolved (see bench/lib/config.ts); written as is into results.json. */
export interface BenchConfig {
  quick: boolean;
  systems: SystemName[];
  ladder: number[];
  /** Heartbeat interval and eviction timeout of every system, ms. */
  interval: number;
  timeout: number;
  /**
   * Heartbeats before the steady phase, at least two rounds: V8 optimizes the hot paths on a
   * background thread that counts as process CPU, which at 1k slaves is a visible share of a phase.
   */
  warmupSeconds: number;
  steadySeconds: number;
  /** NetSync's steady phase at the largest N lasts this long (the 60 s hold target). */
  soakSeconds: number;
  /** Runs of every system at every N, interleaved (N, then each system in turn, R times); measures are their medians. */
  repeat: number;
  /** Slaves per bulk load-generator process. */
  perGen: number;
  /** gRPC streams multiplexed on one connection (--mux). */
  streamsPerConn: number;
  broadcasts: number;
  /** Loopback destination addresses to spread connections over; undefined: as many as the connection count needs. */
  hosts: number | undefined;
  prof: boolean;
  /** A CPU profile of the servers and bulk generators in this phase only (through the inspector, 500 µs sampling), one file per process and run. */
  profPhase: string | undefined;
  /**
   * Background load: a spinner process asking for this fraction of one core (0 = none), started
   * before and stopped after every run, so a fast machine reproduces a slower, shared one.
   */
  spinner: number;
  /** A previous results.json whose results (other systems or N) are kept next to this run's. */
  merge: string | undefined;
  /** Directory for results.json, the charts, nats-server configs and profiles. */
  out: string;
}

export interface RunResult {
  system: SystemName;
  n: number;
  error?: string;
  connected?: number;
  rampMs?: number;
  steadySeconds?: number;
  rounds?: number;
  serverCpuMs?: number;
  /** Master (server) CPU per heartbeat round per slave, µs. */
  cpuUsPerSlaveRound?: number;
  /** Pings each slave received per interval during the steady phase, as its generator counted them (1 when the server keeps time). */
  pingsPerSlaveRound?: number;
  /** Server CPU as a share of one core during the steady phase, %. */
  serverCpuPct?: number;
  /** All load generators' CPU as a share of one core, %: near 100 × cores means the machine was saturated. */
  loadgenCpuPct?: number;
  rssBaseMB?: number;
  rssMB?: number;
  rssKbPerSlave?: number;
  rtt?: Summary;
  bcast?: BroadcastResult;
  evict?: EvictionResult;
  falseEvictions?: number;
  unexpectedEnds?: number;
  endReasons?: Record<string, number>;
  /** Set when the result was carried over from an earlier results.json (--merge). */
  mergedFrom?: string;
  /** The soak (NetSync at the largest N): its length, s, and the RSS per slave at its end. */
  soakSeconds?: number;
  rssKbPerSlaveAfterSoak?: number;
  /** NetSync only: stalls its pause detector reported over the whole run (no evictions are made for that time). */
  pauses?: number;
  pauseMaxMs?: number;
  /** With --repeat: the runs this result is the median of, in the order they ran. */
  runs?: RunResult[];
  /** Server CPU per ping the generators actually received in the steady phase, µs (CPU per round is flattered by a server that pings less often than once per interval). */
  cpuUsPerPing?: number;
  /** Attribution: event-loop delay and GC of the server and the generators in each phase (ramp, warmup, steady, rtt, bcast, freeze). */
  phases?: Record<string, PhaseAttribution>;
  /** The spinner's real CPU share over the run and over the steady phase, % of one core (--spinner). */
  spinner?: { fraction: number; runPct: number; steadyPct: number };
  /** NetSync only: each stall its pause detector reported, with the phase it fell in. */
  pauseLog?: { at: number; ms: number; phase: string }[];
}

/**
 * Delivery of the broadcasts, ms. callMs: how long each broadcast call held the server's event loop (for
 * NetSync's paced broadcastFleet, how long until it resolved: its loop turned meanwhile, see the bcast phase's loop delay);
 * cpuPerDelivery: CPU per delivered command beyond the heartbeat load, server and generators.
 */
export type BroadcastResult = Summary & { expected: number; callMs?: number[]; cpuPerDelivery?: { serverUs: number; loadgenUs: number } };

/** The frozen 1%: how many were evicted, and how long after their last pong (silence) and after the SIGSTOP. */
export interface EvictionResult {
  frozen: number;
  evicted: number;
  missed: number;
  silence: Summary;
  sinceStop: Summary;
}

/** Event-loop delay and GC of a process (or the worst of a group of processes) over one phase. */
export interface LoopGc {
  /** Event-loop delay, ms. For generators: the largest of any generator. */
  delayP50: number;
  delayP99: number;
  delayMax: number;
  /** GC pauses on the main thread: all kinds, and mark-compact (major) alone; generators: summed (max: the largest). */
  gcCount: number;
  gcTotalMs: number;
  gcMaxMs: number;
  majorCount: number;
  majorTotalMs: number;
  majorMaxMs: number;
  /** CPU % of one core (generators: summed) and event-loop busy % (generators: the busiest). */
  cpuPct: number;
  busyPct: number;
  heapMB: number;
  /** Stalls over 100 ms (with the GC inside them) and GC pauses over 50 ms, hrNow clock. */
  stalls: PhaseStats["stalls"];
  longGc: PhaseStats["longGc"];
}

export interface PhaseAttribution {
  ms: number;
  server: LoopGc;
  gens: LoopGc;
  /** The spinner's CPU in this phase, % of one core. */
  spinnerPct?: number;
}
