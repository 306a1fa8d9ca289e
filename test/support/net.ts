/** Local TCP ports for the tests and the benchmarks: finding a free one, waiting for a listener on one. */
import { once } from "node:events";
import { type AddressInfo, connect, createServer } from "node:net";
import { waitFor } from "./wait.js";

/**
 * A port on 127.0.0.1 that was free a moment ago (bind port 0, read it,
 * release it). Another process may take it before the caller binds it; for
 * servers started in a child process (nats-server, redis-server) there is no
 * way to let them pick and report one.
 */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Resolves once something on `host` accepts TCP connections on `port`, trying
 * every 50 ms; rejects after `timeoutMs`. For servers that print no reliable
 * "ready" line: a successful connect is the only sign they are up.
 */
export async function waitForTcp(port: number, timeoutMs: number, host = "127.0.0.1"): Promise<void> {
  await waitFor(() => accepts(host, port), timeoutMs, `a listener on ${host}:${port}`, 50);
}

/** Whether one connection attempt to host:port succeeds (the socket is closed at once). */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((done) => {
    const socket = connect(port, host, () => {
      socket.destroy();
      done(true);
    });
    socket.once("error", () => done(false));
  });
}
