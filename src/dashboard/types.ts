import type { Master } from "../master.js";
import type { CustomInput, SlaveInfo } from "../model.js";

/**
 * What the dashboard uses of a Master: its public API only, so the
 * dashboard needs nothing private and a test can hand it a fake.
 */
export interface DashboardMaster
  extends Pick<Master, "id" | "size" | "heartbeatInterval" | "heartbeatTimeout" | "recentlyClosed" | "send" | "on" | "off"> {
  /** Connected slaves, those matching `selector` when given; INVALID_ARGUMENT for a malformed one. */
  slaves(options?: { selector?: string }): SlaveInfo[];
  /** Sends to every slave, or those matching `selector`; returns how many it was written to. */
  broadcast(custom: CustomInput, options?: { selector?: string }): number;
}
