/** Options of `netsync demo`; kept apart from demo.ts so the CLI can show them without loading the library. */
export interface DemoOptions {
  host: string;
  port: number;
  heartbeatInterval: number;
  heartbeatTimeout: number;
  masterTimeout: number;
  broadcastEvery: number;
  /** When the last slave's connection is frozen, to show an eviction and a reconnect. */
  freezeAfter: number;
  slaves: number;
}

export const DEMO_DEFAULTS: DemoOptions = {
  host: "127.0.0.1",
  port: 0,
  heartbeatInterval: 1_000,
  heartbeatTimeout: 3_000,
  masterTimeout: 4_000,
  broadcastEvery: 3_000,
  freezeAfter: 7_000,
  slaves: 3,
};
