/**
 * A broadcast to thousands of real gRPC streams is paced (issue 19): the
 * master's event loop keeps turning while it writes, so heartbeats, pongs
 * and expiries are not held up behind one long loop. The slaves run in a
 * process of their own (fanout-slaves.ts), so only the master's work is on
 * the loop that is measured.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { expect } from "chai";
import type { Master } from "../../src/master.js";
import { cleanup, sleep, startMaster, track, waitFor } from "../helpers.js";

const CHILD = fileURLToPath(new URL("./fanout-slaves.ts", import.meta.url));
/** One HTTP/2 connection each, as the bench's slaves: the flush after a turn of writes costs per connection. */
const STREAMS = 4_000;
const STREAMS_PER_CONNECTION = 1;
/**
 * Longest turn of the master's loop allowed during a paced broadcast, by the
 * CPU it used (see turnProbe); the median of three broadcasts. Measured here
 * (2 cores shared with other sessions' benchmarks, load 10–15): paced, turns
 * of 16–32 ms; one synchronous loop over the 4,000 connections
 * (master.broadcast) 61–89 ms, some 25 ms of writes and the rest HTTP/2
 * flushing them after the turn (230–570 ms of wall time). The issue's bound
 * is 100 ms at 10,000 slaves; at 4,000 a single loop takes less than that,
 * so the test asks for 40 ms and for half of what the single loop took on
 * the same machine at the same moment.
 */
const LONGEST_TURN_MS = 40;

interface Report {
  sequences: Record<string, number>;
  ended: number;
}

/** The slaves' process: STREAMS streams to `address`, killed by cleanup(). */
function slavesProcess(address: string): { report(): Promise<Report>; kill(): Promise<void> } {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", CHILD, address, String(STREAMS), String(STREAMS_PER_CONNECTION)],
    {
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  const exited = once(child, "exit");
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
  return {
    async report() {
      const from = output.length;
      child.stdin!.write("report\n");
      await waitFor(
        // The slaves' process answers between its own turns over 4,000 streams: slow on a busy 2-core machine.
        () => output.indexOf("\n", from) >= 0,
        15_000,
        () => `a report from the slaves: ${output.slice(from)}`,
      );
      return JSON.parse(output.slice(from, output.indexOf("\n", from))) as Report;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await exited;
    },
  };
}

/**
 * The longest turn of the loop: the longest gap between two ticks of a 5 ms
 * timer, less the 5 ms, counted only as far as this process used the CPU in
 * it. On a shared 2-core machine a process is not always run, and a gap in
 * which it was not is the machine's, not a turn of its loop.
 */
function turnProbe(): { stop(): number } {
  const cpuMs = () => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1000;
  };
  let last = performance.now();
  let lastCpu = cpuMs();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    const cpu = cpuMs();
    longest = Math.max(longest, Math.min(now - last - 5, cpu - lastCpu));
    last = now;
    lastCpu = cpu;
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      return longest;
    },
  };
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

describe(`paced fan-out: broadcasts to ${STREAMS} real streams (issue 19)`, function () {
  this.timeout(40_000);
  this.slow(15_000);
  let master: Master;
  let slaves: ReturnType<typeof slavesProcess>;
  const evicted: string[] = [];

  // One fleet for both tests: opening thousands of connections is most of the time they take.
  before(async () => {
    master = await startMaster({ heartbeatInterval: 1_000, heartbeatTimeout: 3_000, admission: { rate: 0 } });
    master.on("slave:evicted", ({ slave }) => evicted.push(slave.id));
    slaves = slavesProcess(master.address);
    track(() => slaves.kill());
    await waitFor(
      () => master.size === STREAMS,
      30_000,
      () => `${STREAMS} streams (${master.size} so far)`,
    );
    // Past the burst of the connections and their first pings.
    await sleep(1_000);
  });
  after(cleanup);

  it(`never holds the master's event loop over ${LONGEST_TURN_MS} ms, and reaches every stream`, async () => {
    const pongsBefore = master.slaves().reduce((sum, s) => sum + s.pongsReceived, 0);
    const paced = { longest: [] as number[], took: [] as number[] };
    const oneTurn = { longest: [] as number[], took: [] as number[] };
    // Paced and in one turn (master.broadcast), in turns: the same machine at the same moment.
    for (const data of ["b1", "b2", "b3", "b4", "b5", "b6"]) {
      const pacing = data < "b4";
      const probe = turnProbe();
      const started = performance.now();
      const written = pacing ? (await master.broadcastFleet(data)).written : master.broadcast(data);
      const took = Math.round(performance.now() - started);
      // What the last turn wrote is flushed after it: keep probing a little.
      await sleep(50);
      const which = pacing ? paced : oneTurn;
      which.longest.push(Math.round(probe.stop()));
      which.took.push(took);
      expect(written, "written").to.equal(STREAMS);
      await sleep(200);
    }
    const figures = `paced: longest turn ${paced.longest} ms, took ${paced.took} ms; in one turn: longest ${oneTurn.longest} ms`;
    // Medians of three: a machine that does not run this process for a while (shared, 2 cores) shows as a long turn too.
    expect(median(paced.longest), figures).to.be.below(LONGEST_TURN_MS);
    expect(median(paced.longest), figures).to.be.below(median(oneTurn.longest) / 2);
    // Finishing: the pacing costs yields and the loop's other work between them, not seconds.
    expect(median(paced.took), figures).to.be.below(3_000);
    await waitFor(
      async () => (await slaves.report()).sequences["b1,b2,b3,b4,b5,b6"] === STREAMS,
      15_000,
      "every stream got every broadcast",
    );
    expect(evicted, "evicted").to.deep.equal([]);
    expect(
      master.slaves().reduce((sum, s) => sum + s.pongsReceived, 0),
      "pongs still taken",
    ).to.be.above(pongsBefore);
  });

  it("keeps each slave's commands in the order they were given while fan-outs are under way", async () => {
    // What every stream got so far (the same for all), before what this test gives.
    const earlier = Object.keys((await slaves.report()).sequences);
    expect(earlier, "one sequence so far").to.have.length(1);
    const before = earlier[0] ? `${earlier[0]},` : "";
    const first = master.broadcastFleet("o1");
    const second = master.broadcastFleet("o2");
    // Given after both broadcasts: to these two, written after what they are owed of o1 and o2.
    expect(master.send(`f${STREAMS - 1}`, "s")).to.equal(1);
    expect(master.send("f0", "s")).to.equal(1);
    const [one, two] = await Promise.all([first, second]);
    expect([one.written, two.written]).to.deep.equal([STREAMS, STREAMS]);
    // The synchronous broadcast, given while a fan-out is under way, pays every slave what it is owed first.
    const third = master.broadcastFleet("o3");
    expect(master.broadcast("n")).to.equal(STREAMS);
    expect((await third).written).to.equal(STREAMS);

    let report: Report | undefined;
    const complete = async () => {
      report = await slaves.report();
      return Object.keys(report.sequences).every((k) => k.endsWith(",n"));
    };
    await waitFor(complete, 15_000, () => `every command to every stream: ${JSON.stringify(report)}`);
    expect(report!.sequences).to.deep.equal({ [`${before}o1,o2,o3,n`]: STREAMS - 2, [`${before}o1,o2,s,o3,n`]: 2 });
    expect(evicted, "evicted").to.deep.equal([]);
  });
});
