/** The systems the harness can run, in report order. floor-spread runs only when asked for. */
export const SYSTEMS = ["netsync", "floor", "floor-spread", "socketio", "nats"] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The bare grpc-js servers: no registry, no deadlines, never an eviction. */
export const isFloor = (system: SystemName): boolean => system === "floor" || system === "floor-spread";

/** floor-spread's slices per round at N slaves: NetSync's defaults (one per 10 ms of interval, at most 100, at least 100 slaves each). */
export const floorSpreadSlices = (n: number, interval: number): number =>
  interval >= 200 ? Math.min(100, Math.floor(interval / 10), Math.ceil(n / 100)) : 1;
