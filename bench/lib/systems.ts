/** The systems the harness can run, in report order. floor-spread runs only when asked for. */
export const SYSTEMS = ["netsync", "floor", "floor-spread", "socketio", "nats"] as const;
export type SystemName = (typeof SYSTEMS)[number];

/** The bare grpc-js servers: no registry, no deadlines, never an eviction. */
export const isFloor = (system: SystemName): boolean => system === "floor" || system === "floor-spread";
