/** The nats-server a NATS run talks through. */
import { type ChildProcess, spawn } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, waitForTcp } from "../../test/support/net.js";

export interface NatsServerProcess {
  proc: ChildProcess;
  url: string;
  port: number;
}

/**
 * Starts nats-server (Debian package) with a config file of its own in `outDir`, removed when it exits.
 * The NATS system under test is this server plus a small master (bench/servers/nats.ts).
 */
export async function startNatsServer(bindHost: string, outDir: string): Promise<NatsServerProcess> {
  const port = await freePort();
  const file = join(outDir, `nats-server-${port}.conf`);
  writeFileSync(
    file,
    [
      `listen: "${bindHost}:${port}"`,
      "max_connections: 200000",
      // NATS's own transport keepalive stays at its default; liveness is done by the bench master.
      'ping_interval: "2m"',
      "ping_max: 2",
      "",
    ].join("\n"),
  );
  const proc = spawn("nats-server", ["-c", file], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  proc.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
  proc.once("error", (err) => (stderr += String(err)));
  try {
    await waitForTcp(port, 10_000);
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`nats-server did not start (is it installed? bash bench/install-nats.sh): ${String(err)}\n${stderr}`);
  }
  proc.once("exit", () => rmSync(file, { force: true }));
  return { proc, url: `nats://127.0.0.1:${port}`, port };
}

/** SIGTERM, and resolves once it has exited. */
export async function stopNatsServer({ proc }: NatsServerProcess): Promise<void> {
  proc.kill("SIGTERM");
  await new Promise((done) => (proc.exitCode !== null ? done(undefined) : proc.once("exit", done)));
}
