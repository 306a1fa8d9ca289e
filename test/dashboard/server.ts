// Shared by the dashboard suites: a master with a dashboard, and a Chromium
// (Debian's /usr/bin/chromium, never a downloaded one) when there is one.
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type Browser, chromium } from "playwright-core";
import { type DashboardOptions, DashboardServer } from "../../src/dashboard/http-server.js";
import { type Master, type MasterOptions, type Slave, type SlaveOptions, silentLogger } from "../../src/index.js";
import { startMaster, startSlave, track } from "../helpers.js";

export const CHROMIUM = "/usr/bin/chromium";
export const ARTIFACTS = fileURLToPath(new URL("../../test-artifacts/", import.meta.url));

/** Heartbeat of the dashboard tests: slow enough for a browser to watch, fast enough for a test. */
export const INTERVAL = 200;
export const TIMEOUT = 1_000;

export const SKIP_BANNER = [
  "",
  "=".repeat(78),
  "  SKIPPED: the dashboard's browser tests need Debian's chromium;",
  `  run .ci/install-debian.sh (apt-get install chromium): ${CHROMIUM} is missing`,
  "=".repeat(78),
  "",
].join("\n");

export const hasChromium = (): boolean => existsSync(CHROMIUM);

export async function launchChromium(): Promise<Browser> {
  // launch() gives every run a fresh temporary profile; nothing is downloaded.
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless=new",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

export interface Dashboard {
  master: Master;
  server: DashboardServer;
  url: string;
}

/** A listening master (test heartbeat) and its dashboard on 127.0.0.1, both closed by cleanup(). */
export async function startDashboard(masterOptions: MasterOptions = {}, options: Partial<DashboardOptions> = {}): Promise<Dashboard> {
  const master = await startMaster({ heartbeatInterval: INTERVAL, heartbeatTimeout: TIMEOUT, ...masterOptions });
  const server = new DashboardServer(master, {
    port: 0,
    host: "127.0.0.1",
    token: masterOptions.token,
    log: silentLogger(),
    ...options,
  });
  track(() => server.close());
  const port = await server.listen();
  return { master, server, url: `http://127.0.0.1:${port}/` };
}

export function artifactPath(name: string): string {
  mkdirSync(ARTIFACTS, { recursive: true });
  return `${ARTIFACTS}${name}`;
}

/**
 * A started slave (closed by cleanup()) that tolerates a busy machine: a
 * browser starting next to it can delay pings past the helpers' 300 ms
 * master timeout, and a reconnect would muddle what the page shows.
 */
export function startTolerantSlave(address: string, options: Partial<SlaveOptions> = {}): Promise<Slave> {
  return startSlave(address, { masterTimeout: 5_000, ...options });
}
