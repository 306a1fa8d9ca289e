import { randomUUID } from "node:crypto";
import { Metadata } from "@grpc/grpc-js";
import { LogLevels } from "consola";
import { Code } from "../code.js";
import { NetSyncError } from "../errors.js";
import { rejectCall } from "../grpc-adapter.js";
import { type Labels, parseLabels } from "../labels.js";
import type { Logger } from "../logger.js";
import { LABELS_METADATA_KEY, RETRY_AFTER_METADATA_KEY, SLAVE_ID_METADATA_KEY, validateSlaveId } from "../wire.js";
import { Admission } from "./admission.js";
import { DuplicateIds } from "./duplicate-ids.js";
import type { SyncCall } from "./slave-connection.js";
import type { MasterStats } from "./stats.js";

/** A new stream let in: the id it is registered under (its own, or one the master assigned) and the labels it declared. */
export interface Admitted {
  id: string;
  assigned: boolean;
  labels: Labels;
}

export interface GateConfig {
  /** New streams admitted per second and at once (a token bucket); a rate of 0 admits all. */
  admission: { rate: number; burst: number };
  /** Damping of one id replaced again and again (see DuplicateIds). */
  duplicateIds: { limit: number; window: number; cooldown: number };
}

/**
 * Which new Sync streams the fleet takes, decided before any of them costs a
 * registry entry: first the admission rate (a master flooded by a failover
 * storm refuses cheaply, each stream told when to come back), then the id
 * and labels the slave declares (INVALID_ARGUMENT for bad ones), then
 * duplicate ids (newest wins, but two live slaves kicking each other are
 * damped). Every refusal ends the call with a status and is counted; the
 * log gets one line per interval or per cool-down, not one per refusal.
 */
export class StreamGate {
  private readonly admission: Admission;
  private readonly duplicates: DuplicateIds;
  private readonly debug: boolean;

  constructor(
    private readonly config: GateConfig,
    private readonly refused: MasterStats["refused"],
    private readonly log: Logger,
  ) {
    this.admission = new Admission(config.admission.rate, config.admission.burst);
    const { limit, window, cooldown } = config.duplicateIds;
    this.duplicates = new DuplicateIds(limit, window, cooldown);
    this.debug = log.level >= LogLevels.debug;
  }

  /** The stream's id and labels if it is let in; undefined once it was refused. `holderOf` names the peer holding an id now. */
  admit(call: SyncCall, holderOf: (slaveId: string) => string | undefined): Admitted | undefined {
    const now = performance.now();
    if (!this.admitRate(call, now)) return undefined;
    const declared = this.declared(call);
    if (!declared) return undefined;
    if (!declared.assigned && !this.admitDuplicate(call, declared.id, holderOf(declared.id), now)) return undefined;
    return declared;
  }

  private admitRate(call: SyncCall, now: number): boolean {
    const decision = this.admission.admit(now);
    if (decision.admitted) return true;
    const { retryAfterMs, report } = decision;
    this.refused.rate = (this.refused.rate ?? 0) + 1;
    if (report !== undefined) {
      this.log.warn(
        `refusing new streams: they arrive faster than this master admits (${this.config.admission.rate}/s, ` +
          `${this.config.admission.burst} at once); ${report} refused since the last such line, told to retry within ${retryAfterMs} ms`,
      );
    } else if (this.debug) this.log.debug(`refused a new stream (admission); retry in ${retryAfterMs} ms`);
    rejectCall(
      call,
      Code.RESOURCE_EXHAUSTED,
      `master is accepting new streams more slowly than they arrive; retry in ${retryAfterMs} ms`,
      retryAfter(retryAfterMs),
    );
    return false;
  }

  /** The id (claimed or assigned) and labels of a new stream, or undefined after refusing it with INVALID_ARGUMENT. */
  private declared(call: SyncCall): Admitted | undefined {
    const claimed = call.metadata.get(SLAVE_ID_METADATA_KEY)[0];
    let id: string;
    let assigned = false;
    if (claimed === undefined) {
      id = `slave-${randomUUID().slice(0, 8)}`;
      assigned = true;
    } else {
      id = typeof claimed === "string" ? claimed : claimed.toString("utf8");
      const problem = validateSlaveId(id);
      if (problem) {
        this.log.warn(`refused a stream from ${call.getPeer()}: ${problem}`);
        rejectCall(call, Code.INVALID_ARGUMENT, `${SLAVE_ID_METADATA_KEY}: ${problem}`);
        return undefined;
      }
    }
    try {
      const declared = call.metadata.get(LABELS_METADATA_KEY).map((v) => (typeof v === "string" ? v : v.toString("utf8")));
      return { id, assigned, labels: parseLabels(declared.join(",")) };
    } catch (err) {
      const { message } = NetSyncError.from(err);
      this.log.warn({ message: `refused slave ${id} from ${call.getPeer()}: ${message}`, slaveId: id, peer: call.getPeer() });
      rejectCall(call, Code.INVALID_ARGUMENT, message);
      return undefined;
    }
  }

  /**
   * Newest wins, but not forever: an id whose connections replace each other
   * too often is cooling down, and a new stream for it is refused with
   * ALREADY_EXISTS while the holder keeps its own. One warning per cool-down.
   */
  private admitDuplicate(call: SyncCall, id: string, holder: string | undefined, now: number): boolean {
    const decision = this.duplicates.admit(id, holder !== undefined, now);
    if (!decision.refused || !holder) return true;
    this.refused.duplicate_id = (this.refused.duplicate_id ?? 0) + 1;
    const { limit, window, cooldown } = this.config.duplicateIds;
    const peer = call.getPeer();
    const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
    if (decision.started) {
      this.log.warn({
        message:
          `two live slaves use the id ${id}: ${holder} and ${peer} keep replacing each other (${decision.count} connections in ${seconds(window)}); ` +
          `keeping ${holder} and refusing new connections for ${id} for ${seconds(cooldown)}`,
        slaveId: id,
        peer,
      });
    } else if (this.debug) this.log.debug(`refused ${id} from ${peer}: the id is cooling down`);
    rejectCall(
      call,
      Code.ALREADY_EXISTS,
      `slave id ${id} is in use by ${holder}; it was replaced too often (${limit} connections in ` +
        `${seconds(window)}), so new connections for it are refused for ${seconds(decision.retryAfterMs)}`,
      retryAfter(decision.retryAfterMs),
    );
    return false;
  }
}

/** Trailing metadata that tells a refused slave when to try again. */
function retryAfter(ms: number): Metadata {
  const trailers = new Metadata();
  trailers.set(RETRY_AFTER_METADATA_KEY, String(Math.ceil(ms)));
  return trailers;
}
