import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { decodeMessage, type PartMessage } from "./messages.js";

export interface GatherTarget {
  /** The master's id. */
  id: string;
  /** Its own request subject. */
  subject: string;
  /** What to send this target, when it is not the gather's common payload (a page asks each master from its own cursor). */
  payload?: string;
}

export interface GatherOptions {
  /**
   * How long, from the start, to wait for the full answer of a target that
   * acknowledged the request (an `accepted` part) but has not answered yet:
   * it is acting on it, so its answer is worth waiting for past `timeoutMs`.
   * Default `timeoutMs` (acknowledged or not, nobody is waited for longer).
   */
  answerTimeoutMs?: number;
}

export interface GatherResult {
  /** Every part of each master that answered in full, by master id. */
  answers: Map<string, PartMessage[]>;
  /** Masters that had no responder (gone), or neither acknowledged nor answered in full in time. */
  unanswered: string[];
  /** Masters that acknowledged the request but did not answer in full within `answerTimeoutMs`. */
  pending: string[];
}

/** NATS's status for a request on a subject nobody subscribes to. */
const NO_RESPONDERS = 503;

/**
 * Scatter-gather over one inbox: publishes `payload` to each target's own
 * subject with a reply subject per target, and collects their answers,
 * which may come in several parts. Waits only for the targets named (the
 * masters known alive), at most `timeoutMs`; a target without subscribers
 * is known at once from NATS's "no responders" status, so a master that died
 * since its last heartbeat costs nothing. A target that acknowledged (a
 * request that asks for it, like a broadcast, is acknowledged before the
 * work) is waited for up to `answerTimeoutMs` instead: past `timeoutMs` the
 * gather ends as soon as every acknowledged target answered, and a target
 * that acknowledged late, while others were still awaited, counts too.
 * Never rejects.
 */
export function gather(
  nc: NatsConnection,
  cluster: string,
  targets: GatherTarget[],
  payload: string,
  timeoutMs: number,
  options: GatherOptions = {},
): Promise<GatherResult> {
  const answers = new Map<string, PartMessage[]>();
  const failed = new Set<string>();
  const acked = new Set<string>();
  if (targets.length === 0) return Promise.resolve({ answers, unanswered: [], pending: [] });
  const answerTimeoutMs = Math.max(timeoutMs, options.answerTimeoutMs ?? timeoutMs);
  const inbox = createInbox();
  const partial = new Map<number, PartMessage[]>();
  return new Promise<GatherResult>((resolve) => {
    let firstDeadlinePassed = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.unsubscribe();
      const missing = targets.filter((t) => !answers.has(t.id));
      resolve({
        answers,
        unanswered: missing.filter((t) => !acked.has(t.id)).map((t) => t.id),
        pending: missing.filter((t) => acked.has(t.id)).map((t) => t.id),
      });
    };
    const settled = (t: GatherTarget) => answers.has(t.id) || failed.has(t.id);
    // Done when everyone settled; past the first deadline, when every target that acknowledged did.
    const check = () => {
      if (targets.every(settled) || (firstDeadlinePassed && targets.every((t) => settled(t) || !acked.has(t.id)))) finish();
    };
    const onMessage = (msg: Msg) => {
      const index = Number(msg.subject.slice(inbox.length + 1));
      const target = targets[index];
      if (!target || settled(target)) return;
      if (msg.headers?.code === NO_RESPONDERS || (msg.data.length === 0 && msg.headers?.hasError)) {
        failed.add(target.id);
        check();
        return;
      }
      const part = decodeMessage(msg.string(), cluster);
      if (part?.kind !== "part" || part.masterId !== target.id) return;
      if (part.accepted) {
        acked.add(target.id);
        return;
      }
      const parts = partial.get(index) ?? [];
      if (parts.some((p) => p.part === part.part)) return;
      parts.push(part);
      partial.set(index, parts);
      if (parts.length === part.parts) {
        answers.set(
          target.id,
          parts.sort((a, b) => a.part - b.part),
        );
        check();
      }
    };
    const sub = nc.subscribe(`${inbox}.*`, { callback: (err, msg) => (err ? undefined : onMessage(msg)) });
    let timer = setTimeout(() => {
      firstDeadlinePassed = true;
      check();
      if (done) return;
      timer = setTimeout(finish, answerTimeoutMs - timeoutMs);
      timer.unref();
    }, timeoutMs);
    timer.unref();
    targets.forEach((target, i) => {
      try {
        nc.publish(target.subject, target.payload ?? payload, { reply: `${inbox}.${i}` });
      } catch {
        failed.add(target.id);
        check();
      }
    });
  });
}
