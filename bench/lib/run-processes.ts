/** Every process one run started, so that the run can stop them all whatever phase it failed in. */
import type { BackgroundLoad } from "./background-load.js";
import type { Child } from "./common.js";
import { type NatsServerProcess, stopNatsServer } from "./nats-server.js";

export class RunProcesses {
  load: BackgroundLoad | undefined;
  nats: NatsServerProcess | undefined;
  server: Child | undefined;
  readonly generators: Child[] = [];

  /**
   * Stops them in the reverse order of their start: the clients before the
   * server (so the server does not log their loss as a failure of its own),
   * the server (10 s grace: a master with many slaves takes time to close)
   * before nats-server, and the background load last.
   */
  async stopAll(): Promise<void> {
    await Promise.all(this.generators.map((g) => g.stop()));
    await this.server?.stop(10_000);
    if (this.nats) await stopNatsServer(this.nats);
    await this.load?.stop();
  }
}
