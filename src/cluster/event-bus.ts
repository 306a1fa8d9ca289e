import type { Msg } from "@nats-io/transport-node";
import type { ClusterEvent } from "./events.js";
import type { ClusterHost } from "./host.js";

/** Events in one message at most: a mass disconnect of 10,000 slaves goes out in 40 messages, not 10,000. */
const MAX_EVENTS_PER_MESSAGE = 256;

/**
 * The cluster's event stream: this master's slave events go out on the
 * events subject, batched per turn of the event loop (a burst of
 * disconnects is one message, not one per slave); every other master's
 * arrive through {@link onEvents}, on masters where someone watches (the
 * node subscribes the events subject only then). Published whether or not
 * anyone watches (a master cannot know who watches elsewhere; NATS drops
 * what nobody subscribes): one small message per connect or disconnect,
 * never per heartbeat. Nothing is kept for a master that is away: events
 * are at most once.
 */
export class EventBus {
  private pending: ClusterEvent[] = [];
  private flushing: NodeJS.Immediate | undefined;

  constructor(
    private readonly host: ClusterHost,
    private readonly deliver: (events: ClusterEvent[], from: string) => void,
  ) {}

  /** Queues a local event for the next flush; dropped while NATS is away. */
  publish(event: ClusterEvent): void {
    if (!this.host.connected) return;
    this.pending.push(event);
    this.flushing ??= setImmediate(() => this.flush());
  }

  /** A message on the events subject: another master's events (this master's own come back too, and are skipped). */
  onEvents(msg: Msg): void {
    const message = this.host.decode(msg);
    if (message?.kind !== "events" || message.from === this.host.fleet.id) return;
    this.deliver(message.events, message.from);
  }

  stop(): void {
    clearImmediate(this.flushing);
    this.flushing = undefined;
    this.pending = [];
  }

  private flush(): void {
    this.flushing = undefined;
    const { host } = this;
    const nc = host.nc;
    const events = this.pending;
    this.pending = [];
    if (!nc || !host.connected) return;
    for (let i = 0; i < events.length; i += MAX_EVENTS_PER_MESSAGE) {
      const batch = events.slice(i, i + MAX_EVENTS_PER_MESSAGE);
      host.publish(nc, host.subjects.events, { kind: "events", cluster: host.clusterName, from: host.fleet.id, events: batch });
    }
  }
}
