import * as net from "node:net";

interface Pair {
  readonly client: net.Socket;
  readonly upstream: net.Socket;
  frozen: boolean;
}

/**
 * A loopback TCP relay that can freeze the connections going through it:
 * they stay open but no byte passes in either direction and neither end
 * hears of the other closing, like a partition that sends no RST. The demo
 * uses it to show an eviction and a reconnect; tests use it as a blackhole.
 */
export class TcpProxy {
  private readonly server: net.Server;
  private readonly pairs = new Set<Pair>();
  /** Whether connections accepted from now on start frozen. */
  private freezeNew = false;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = net.createServer((client) => this.relay(client));
  }

  async listen(host = "127.0.0.1", port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Relayed connections whose upstream (master-side) socket is still open. */
  get upstreamConnections(): number {
    let open = 0;
    for (const pair of this.pairs) if (!pair.upstream.destroyed) open++;
    return open;
  }

  /**
   * Freezes the connections open now; with `newConnections`, those accepted
   * later are frozen too (a full blackhole), until thaw().
   */
  freeze(options: { newConnections?: boolean } = {}): void {
    this.freezeNew = options.newConnections ?? false;
    for (const pair of this.pairs) this.freezePair(pair);
  }

  /** Lets bytes flow again on every frozen connection, and on new ones. */
  thaw(): void {
    this.freezeNew = false;
    for (const pair of this.pairs) {
      if (!pair.frozen) continue;
      pair.frozen = false;
      if (pair.client.destroyed || pair.upstream.destroyed) {
        // One side closed while frozen: deliver the close now.
        pair.client.destroy();
        pair.upstream.destroy();
        this.pairs.delete(pair);
        continue;
      }
      pair.client.pipe(pair.upstream);
      pair.upstream.pipe(pair.client);
    }
  }

  private freezePair(pair: Pair): void {
    pair.frozen = true;
    pair.client.unpipe(pair.upstream);
    pair.upstream.unpipe(pair.client);
    pair.client.pause();
    pair.upstream.pause();
  }

  /** Cuts every open connection, frozen or not. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.target.port, this.target.host);
    const pair: Pair = { client, upstream, frozen: false };
    this.pairs.add(pair);
    if (this.freezeNew) this.freezePair(pair);
    else {
      client.pipe(upstream);
      upstream.pipe(client);
    }
    const onClose = () => {
      if (pair.frozen) {
        // A partition hides the close from the other side; cut() ends it.
        if (client.destroyed && upstream.destroyed) this.pairs.delete(pair);
        return;
      }
      client.destroy();
      upstream.destroy();
      this.pairs.delete(pair);
    };
    client.on("close", onClose).on("error", onClose);
    upstream.on("close", onClose).on("error", onClose);
  }
}
