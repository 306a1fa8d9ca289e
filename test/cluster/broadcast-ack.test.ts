// A fleet broadcast reports what each master did: a master that acknowledged and then writes for
// longer than the gather timeout is counted when its count comes (pending if it never comes within
// broadcastTimeout), and only a master that did not even acknowledge is unanswered. The slow and the
// stopped masters run in processes of their own (broadcast-child.ts): a blocked event loop or SIGSTOP
// there leaves the asker's timers running, as on separate machines.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { expect } from "chai";
import { AdminService, BroadcastRequestSchema } from "../../gen/netsync/v1/admin_pb.js";
import { callUnary } from "../../src/grpc-adapter.js";
import type { Master } from "../../src/master.js";
import { grpcClient } from "../grpc-helpers.js";
import { cleanup, track, waitFor } from "../helpers.js";
import { clusterMaster, echoSlave } from "./masters-helpers.js";
import { allThreadsStopped, haveNatsServer, NatsServer } from "./nats-server.js";

const CHILD = fileURLToPath(new URL("./broadcast-child.ts", import.meta.url));

/** A master in its own process (broadcast-child.ts) holding `slaves`, killed by cleanup(). */
interface ChildMaster {
  child: ChildProcess;
  output(): string;
  /** SIGSTOP, resolved once every thread of it is stopped. */
  stop(): Promise<void>;
}

async function childMaster(url: string, id: string, slaves: number): Promise<ChildMaster> {
  const child = spawn(process.execPath, ["--import", "tsx", CHILD, url, id, String(slaves)], { stdio: ["ignore", "pipe", "pipe"] });
  const exited = once(child, "exit");
  track(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  await waitFor(
    () => output.includes("ready\n") || child.exitCode !== null,
    15_000,
    () => `${id} ready: ${output}`,
  );
  expect(child.exitCode, output).to.equal(null);
  return {
    child,
    output: () => output,
    stop: async () => {
      child.kill("SIGSTOP");
      await waitFor(() => allThreadsStopped(child.pid!), 2_000, `${id} stopped`);
    },
  };
}

/** Every master lists `ids` (the children beat every second). */
async function knownBy(master: Master, ids: string[]): Promise<void> {
  const want = [...ids].sort().join();
  await waitFor(
    () =>
      master
        .masters()
        .map((m) => m.id)
        .sort()
        .join() === want,
    5_000,
    () => `${master.id} to list ${want}: ${master.masters().map((m) => m.id)}`,
  );
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const started = performance.now();
  const value = await fn();
  return [value, performance.now() - started];
}

describe("fleet broadcast: acknowledged first, counted when the count comes", function () {
  this.timeout(30_000);
  let server: NatsServer;

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    server = new NatsServer();
    await server.start();
  });
  after(async () => {
    await server?.kill();
  });
  afterEach(cleanup);

  it("a master blocked past the gather timeout after its ack is counted, not unanswered; one stopped before its ack is unanswered", async () => {
    const gatherTimeout = 400;
    const block = 1_200;
    const asker = await clusterMaster("asker", [server.url], { gatherTimeout, broadcastTimeout: 4_000 });
    const received: string[] = [];
    for (const id of ["a1", "a2"]) (await echoSlave(asker, id)).on("command", (c) => received.push(`${id}:${c.data}`));
    const slow = await childMaster(server.url, "slow", 5);
    const stopped = await childMaster(server.url, "stopped", 3);
    await knownBy(asker, ["asker", "slow", "stopped"]);

    await stopped.stop();
    const [result, ms] = await timed(() => asker.broadcastFleet(`block:${block}`));
    console.log(`      ${JSON.stringify(result)} in ${ms.toFixed(0)} ms (gather timeout ${gatherTimeout} ms, slow blocked ${block} ms)`);
    expect(result).to.deep.equal({ written: 7, byMaster: { asker: 2, slow: 5 }, unanswered: ["stopped"], clusterAvailable: true });
    // It waited out the slow master's block, which outlasted the gather timeout.
    expect(ms).to.be.greaterThan(block);
    expect(slow.output()).to.include(`wrote block:${block} 5\n`);
    await waitFor(() => received.length === 2, 2_000, "the asker's own slaves to get the broadcast");
    expect(stopped.output()).not.to.include("wrote");
  });

  it("a master whose count does not come within broadcastTimeout is pending, not unanswered; the call ends at that bound", async () => {
    const broadcastTimeout = 1_000;
    const asker = await clusterMaster("asker", [server.url], { gatherTimeout: 300, broadcastTimeout });
    await echoSlave(asker, "a1");
    const slow = await childMaster(server.url, "slow", 5);
    await knownBy(asker, ["asker", "slow"]);

    const [result, ms] = await timed(() => asker.broadcastFleet("block:2500"));
    console.log(`      ${JSON.stringify(result)} in ${ms.toFixed(0)} ms (broadcastTimeout ${broadcastTimeout} ms, slow blocked 2500 ms)`);
    expect(result).to.deep.equal({ written: 1, byMaster: { asker: 1 }, unanswered: [], pending: ["slow"], clusterAvailable: true });
    // A timer may fire a fraction of a ms before performance.now() says its delay passed (999.86 ms seen in CI).
    expect(ms).to.be.within(broadcastTimeout - 5, 2_500);
    // It did act: the count comes, late.
    await waitFor(() => slow.output().includes("wrote block:2500 5\n"), 5_000, "the slow master's write");
    // AdminService says the same: pending, not unanswered.
    const response = await callUnary(
      grpcClient(asker.address),
      AdminService.method.broadcast,
      create(BroadcastRequestSchema, { custom: { data: "block:1500" } }),
      { deadline: Date.now() + 5_000 },
    );
    expect([response.written, response.unansweredMasters, response.pendingMasters]).to.deep.equal([1, [], ["slow"]]);
    await waitFor(() => slow.output().includes("wrote block:1500 5\n"), 5_000, "the slow master's second write");
  });
});
