/** The machine and the versions a results.json was measured with. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { round } from "./common.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export function machine() {
  const version = (pkg: string) =>
    (JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as { version: string }).version;
  let natsServer = "not installed";
  try {
    natsServer = execFileSync("nats-server", ["--version"], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    /* reported as not installed */
  }
  return {
    date: new Date().toISOString(),
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? "unknown",
    memoryGB: round(totalmem() / 2 ** 30, 1),
    node: process.version,
    grpcJs: version("@grpc/grpc-js"),
    socketIo: version("socket.io"),
    natsJs: version("nats"),
    natsServer,
  };
}
