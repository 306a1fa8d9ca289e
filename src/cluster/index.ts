export type { ClusterNodeEvents } from "./cluster-node.js";
export { ClusterNode } from "./cluster-node.js";
export { ClusterScope } from "./cluster-scope.js";
export type { Epoch } from "./epoch.js";
export { compareEpochs, EpochClock } from "./epoch.js";
export type { ClusterOptions, ResolvedClusterOptions } from "./options.js";
export { resolveClusterOptions } from "./options.js";
export type { ClusterObserver, ClusterStats } from "./stats.js";
export type {
  ClusterMember,
  ClusterReply,
  ClusterSlave,
  ClusterState,
  FleetSlaves,
  LocalFleet,
  RoutedReply,
} from "./types.js";
