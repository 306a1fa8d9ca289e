import { createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { decodeMessage, type PartMessage } from "./messages.js";

export interface GatherTarget {
  /** The master's id. */
  id: string;
  /** Its own request subject. */
  subject: string;
}

export interface GatherResult {
  /** Every part of each master that answered in full, by master id. */
  answers: Map<string, PartMessage[]>;
  /** Masters that had no responder (gone) or did not answer in full within the timeout. */
  unanswered: string[];
}

/** NATS's status for a request on a subject nobody subscribes to. */
const NO_RESPONDERS = 503;

/**
 * Scatter-gather over one inbox: publishes `payload` to each target's own
 * subject with a reply subject per target, and collects their answers,
 * which may come in several parts. Waits only for the targets named (the
 * masters known alive), at most `timeoutMs`; a target without subscribers
 * is known at once from NATS's "no responders" status, so a master that died
 * since its last heartbeat costs nothing. Never rejects.
 */
export function gather(
  nc: NatsConnection,
  cluster: string,
  targets: GatherTarget[],
  payload: string,
  timeoutMs: number,
): Promise<GatherResult> {
  const answers = new Map<string, PartMessage[]>();
  const failed = new Set<string>();
  if (targets.length === 0) return Promise.resolve({ answers, unanswered: [] });
  const inbox = createInbox();
  const partial = new Map<number, PartMessage[]>();
  return new Promise<GatherResult>((resolve) => {
    let pending = targets.length;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sub.unsubscribe();
      const unanswered = targets.filter((t) => !answers.has(t.id)).map((t) => t.id);
      resolve({ answers, unanswered });
    };
    const settle = () => {
      if (--pending === 0) finish();
    };
    const onMessage = (msg: Msg) => {
      const index = Number(msg.subject.slice(inbox.length + 1));
      const target = targets[index];
      if (!target || answers.has(target.id) || failed.has(target.id)) return;
      if (msg.headers?.code === NO_RESPONDERS || (msg.data.length === 0 && msg.headers?.hasError)) {
        failed.add(target.id);
        settle();
        return;
      }
      const part = decodeMessage(msg.string(), cluster);
      if (part?.kind !== "part" || part.masterId !== target.id) return;
      const parts = partial.get(index) ?? [];
      if (parts.some((p) => p.part === part.part)) return;
      parts.push(part);
      partial.set(index, parts);
      if (parts.length === part.parts) {
        answers.set(
          target.id,
          parts.sort((a, b) => a.part - b.part),
        );
        settle();
      }
    };
    const sub = nc.subscribe(`${inbox}.*`, { callback: (err, msg) => (err ? undefined : onMessage(msg)) });
    const timer = setTimeout(finish, timeoutMs);
    timer.unref();
    targets.forEach((target, i) => {
      try {
        nc.publish(target.subject, payload, { reply: `${inbox}.${i}` });
      } catch {
        failed.add(target.id);
        settle();
      }
    });
  });
}
