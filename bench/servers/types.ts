/** What every server process of the benchmark is started with. */
export interface ServerConfig {
  /** Address to listen on. */
  host: string;
  /** Heartbeat interval and timeout, ms. */
  interval: number;
  timeout: number;
  /** NATS only: the nats-server URL to connect the master to. */
  natsUrl?: string;
  /** floor-spread only: each ping round is cut into this many slices, interval / slices apart. */
  slices?: number;
}

export interface EvictionRecord {
  id: string;
  /** When the server evicted it (hrNow clock). */
  at: number;
  /** Silence before eviction: eviction time minus the last message from the slave, ms. */
  silentMs: number;
  details?: string;
}

export interface LossRecord {
  id: string;
  at: number;
  reason: string;
}

export interface ServerEvents {
  evicted: EvictionRecord[];
  /** Streams or connections that ended for any other reason. */
  lost: LossRecord[];
}
