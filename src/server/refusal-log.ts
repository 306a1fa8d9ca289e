import type { ConsolaInstance } from "consola";

interface PeerEntry {
  /** When this peer's last line was logged. */
  loggedAt: number;
  /** Refusals since that line, not yet in any. */
  unlogged: number;
}

/**
 * Logs refusals of credentials at most once per peer host per `interval`
 * ms, each line with the count of refusals since the peer's last one, so a
 * fleet of slaves with a wrong token cannot flood the master's log. Keyed by
 * host, not host:port (each reconnect comes from a new port). It remembers
 * at most `maxPeers` hosts: the one logged longest ago is forgotten first
 * (with a line for what it had not logged yet). No timer: a count not yet
 * logged goes out with the peer's next refusal after the interval.
 */
export class RefusalLog {
  private readonly peers = new Map<string, PeerEntry>();

  constructor(
    private readonly log: Pick<ConsolaInstance, "warn">,
    private readonly interval: number,
    private readonly maxPeers: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Hosts remembered (for tests: it stays within maxPeers). */
  get size(): number {
    return this.peers.size;
  }

  refused(peer: string, path: string, reason: string): void {
    const host = hostOf(peer);
    const now = this.now();
    const entry = this.peers.get(host);
    if (entry && now - entry.loggedAt < this.interval) {
      entry.unlogged++;
      return;
    }
    const earlier = entry?.unlogged ?? 0;
    const more = earlier > 0 ? `${earlier} more refused from ${host} since its last line; ` : "";
    this.log.warn(`refused ${path} from ${peer}: ${reason} (${more}at most one line per host every ${Math.round(this.interval / 1000)} s)`);
    // Re-inserted, so the map's first entry is always the host logged longest ago.
    this.peers.delete(host);
    this.peers.set(host, { loggedAt: now, unlogged: 0 });
    if (this.peers.size > this.maxPeers) this.forgetOldest();
  }

  private forgetOldest(): void {
    const [host, entry] = this.peers.entries().next().value as [string, PeerEntry];
    this.peers.delete(host);
    if (entry.unlogged > 0) this.log.warn(`refused ${entry.unlogged} more calls from ${host} (no longer tracked)`);
  }
}

/** "ipv4:127.0.0.1:5000" → "ipv4:127.0.0.1", "[::1]:5000" → "[::1]"; anything else as it is. */
function hostOf(peer: string): string {
  const colon = peer.lastIndexOf(":");
  return colon > 0 && /^\d+$/.test(peer.slice(colon + 1)) ? peer.slice(0, colon) : peer;
}
