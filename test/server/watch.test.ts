// AdminService.Watch on one master: real master, real slaves and clients on 127.0.0.1.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import {
  AdminService,
  CloseReason,
  WatchEventKind,
  WatchRequestSchema,
  type WatchResponse,
  WatchResponseSchema,
} from "../../gen/netsync/v1/admin_pb.js";
import type { AdminClient } from "../../src/admin-client.js";
import { Code } from "../../src/code.js";
import type { NetSyncError } from "../../src/errors.js";
import { methodPath } from "../../src/grpc-adapter.js";
import { adminClient } from "../grpc-helpers.js";
import { cleanup, onceWhere, rawClient, startMaster, startSlave, track, waitFor } from "../helpers.js";

const BUF = fileURLToPath(new URL("../../node_modules/.bin/buf", import.meta.url));

/** Collects a watch's events into `events` until cleanup() aborts it; `ended` resolves with its error (or undefined). */
function collect(admin: AdminClient, options: Parameters<AdminClient["watch"]>[0] = {}) {
  const events: WatchResponse[] = [];
  const abort = new AbortController();
  track(() => abort.abort());
  const ended = (async () => {
    try {
      for await (const event of admin.watch({ ...options, signal: abort.signal })) events.push(event);
      return undefined;
    } catch (err) {
      return err as NetSyncError;
    }
  })();
  const synced = () => events.some((e) => e.kind === WatchEventKind.SYNCED);
  return { events, ended, synced: () => waitFor(synced, 2_000, "the SYNCED event") };
}

const kindsOf = (events: WatchResponse[]) => events.map((e) => `${WatchEventKind[e.kind]}${e.slave ? ` ${e.slave.id}` : ""}`);

describe("AdminService.Watch", function () {
  this.timeout(15_000);
  afterEach(cleanup);

  it("streams SYNCED, then connects, disconnects, replacements and evictions, each with the slave and its master", async () => {
    const master = await startMaster({ name: "m1" });
    const watch = collect(adminClient(master.address));
    await watch.synced();
    const slave = await startSlave(master.address, { id: "w1", labels: { region: "eu" } });
    await waitFor(() => watch.events.length === 2, 2_000, "the connected event");
    const connected = watch.events[1]!;
    expect(connected.kind).to.equal(WatchEventKind.CONNECTED);
    expect(connected.masterId).to.equal("m1");
    expect(connected.slave?.masterId).to.equal("m1");
    expect(connected.slave?.labels).to.deep.equal({ region: "eu" });
    expect(connected.slave?.peer).to.match(/^127\.0\.0\.1:\d+$/);
    expect(connected.time).to.not.equal(undefined);
    // A second stream with the same id replaces the first.
    const replacement = rawClient(master.address, { id: "w1" });
    await waitFor(() => watch.events.some((e) => e.kind === WatchEventKind.REPLACED), 2_000, "the replaced event");
    await slave.close();
    replacement.close();
    await waitFor(() => watch.events.some((e) => e.kind === WatchEventKind.DISCONNECTED), 2_000, "the disconnected event");
    const evicted = onceWhere(master, "slave:evicted", (e) => e.slave.id === "mute");
    rawClient(master.address, { id: "mute" });
    await evicted;
    await waitFor(() => watch.events.some((e) => e.kind === WatchEventKind.EVICTED), 2_000, "the evicted event");
    const replaced = watch.events.find((e) => e.kind === WatchEventKind.REPLACED)!;
    expect(replaced.reason).to.equal(CloseReason.REPLACED);
    expect(replaced.details).to.match(/replaced by a newer connection/);
    const eviction = watch.events.find((e) => e.kind === WatchEventKind.EVICTED)!;
    expect(eviction.slave?.id).to.equal("mute");
    expect(eviction.reason).to.equal(CloseReason.EVICTED);
    expect(eviction.details).to.match(/heartbeat timeout/);
    // The older stream is ended before the newer one is announced.
    expect(kindsOf(watch.events).slice(0, 4)).to.deep.equal(["SYNCED", "CONNECTED w1", "REPLACED w1", "CONNECTED w1"]);
  });

  it("starts with a snapshot when asked, and filters by selector and kinds", async () => {
    const master = await startMaster();
    await startSlave(master.address, { id: "eu-1", labels: { region: "eu" } });
    await startSlave(master.address, { id: "us-1", labels: { region: "us" } });
    const admin = adminClient(master.address);
    const all = collect(admin, { snapshot: true });
    const eu = collect(admin, { snapshot: true, selector: "region=eu", kinds: [WatchEventKind.DISCONNECTED] });
    await all.synced();
    await eu.synced();
    expect(kindsOf(all.events).sort()).to.deep.equal(["SNAPSHOT eu-1", "SNAPSHOT us-1", "SYNCED"]);
    expect(all.events.at(-1)!.kind).to.equal(WatchEventKind.SYNCED);
    expect(kindsOf(eu.events)).to.deep.equal(["SYNCED"]); // SNAPSHOT is not among its kinds
    const later = await startSlave(master.address, { id: "eu-2", labels: { region: "eu" } });
    await later.close();
    await waitFor(() => all.events.length === 5, 2_000, "eu-2's two events");
    await waitFor(() => eu.events.length === 2, 2_000, "eu-2's disconnect");
    expect(kindsOf(eu.events)).to.deep.equal(["SYNCED", "DISCONNECTED eu-2"]);
    expect(kindsOf(all.events).slice(3)).to.deep.equal(["CONNECTED eu-2", "DISCONNECTED eu-2"]);
  });

  it("refuses a malformed selector with INVALID_ARGUMENT, and ends every watch with UNAVAILABLE when the master closes", async () => {
    const master = await startMaster();
    const admin = adminClient(master.address);
    const bad = await collect(admin, { selector: "role in (db" }).ended;
    expect(bad?.code).to.equal(Code.INVALID_ARGUMENT);
    const watch = collect(admin);
    await watch.synced();
    await master.close();
    const err = await watch.ended;
    expect(err?.code).to.equal(Code.UNAVAILABLE);
    expect(err?.message).to.match(/master shutting down/);
  });

  it("buf curl drives it through reflection, one JSON object per event", async () => {
    const master = await startMaster({ name: "curl-m" });
    await startSlave(master.address, { id: "seen" });
    const child = spawn(BUF, [
      "curl",
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      `http://${master.address}/netsync.v1.AdminService/Watch`,
      "-d",
      '{"snapshot": true}',
    ]);
    track(() => child.kill());
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    await waitFor(
      () => out.includes("WATCH_EVENT_KIND_SYNCED"),
      8_000,
      () => `SYNCED from buf curl, got: ${out}`,
    );
    const late = await startSlave(master.address, { id: "late" });
    await late.close();
    await waitFor(
      () => out.includes("WATCH_EVENT_KIND_DISCONNECTED"),
      4_000,
      () => `the disconnect from buf curl, got: ${out}`,
    );
    expect(out).to.include('"kind": "WATCH_EVENT_KIND_SNAPSHOT"');
    expect(out).to.include('"id": "seen"');
    expect(out).to.include('"masterId": "curl-m"');
    expect(out).to.include('"id": "late"');
  });

  it("cuts a watcher that never reads with RESOURCE_EXHAUSTED, and keeps pinging other slaves on time meanwhile", async () => {
    const interval = 100;
    const master = await startMaster({ heartbeatInterval: interval, heartbeatTimeout: 1_000, watchBuffer: 20 });
    const evictions: string[] = [];
    master.on("slave:evicted", (e) => evictions.push(e.slave.id));
    await startSlave(master.address, { id: "steady", masterTimeout: 5_000 });

    // A raw grpc-js client: it reads the SYNCED event, then pauses its stream and never reads again.
    const client = new grpc.Client(master.address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
    track(() => client.close());
    const call = client.makeServerStreamRequest(
      methodPath(AdminService.method.watch),
      (value: ReturnType<typeof create<typeof WatchRequestSchema>>) => Buffer.from(toBinary(WatchRequestSchema, value)),
      (bytes: Buffer) => fromBinary(WatchResponseSchema, bytes),
      create(WatchRequestSchema, {}),
    );
    track(() => call.cancel());
    let received = 0;
    const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
    call.on("error", () => {});
    await new Promise<void>((resolve) =>
      call.on("data", () => {
        received++;
        if (received === 1) {
          call.pause();
          resolve();
        }
      }),
    );

    // Events of ~2 KiB each (16 long labels): enough to fill HTTP/2's windows, grpc-js's buffers and the 20 queued.
    const labels = Array.from({ length: 16 }, (_, i) => `k${i}${"x".repeat(60)}=${"v".repeat(63)}`).join(",");
    const steadyBefore = master.slaves().find((s) => s.id === "steady")!.pingsSent;
    const started = performance.now();
    // At least 100 churns, and for at least 1.5 s (15 rounds of the steady slave's pings).
    let churns = 0;
    for (let i = 0; i < 100 || performance.now() - started < 1_500; i += 10) {
      churns += 10;
      const batch = Array.from({ length: 10 }, (_, j) =>
        rawClient(master.address, { id: `churn-${i + j}`, metadata: { "netsync-slave-labels": labels } }),
      );
      await waitFor(() => batch.every((_, j) => master.has(`churn-${i + j}`)), 3_000, "a batch of churn slaves connected");
      for (const raw of batch) raw.close();
      await waitFor(() => batch.every((_, j) => !master.has(`churn-${i + j}`)), 3_000, "a batch of churn slaves gone");
    }
    const elapsed = performance.now() - started;
    const steadyPings = master.slaves().find((s) => s.id === "steady")!.pingsSent - steadyBefore;
    // On time: about one ping per interval (a round may slip by a slice on a busy machine, never stall).
    expect(steadyPings, `pings to steady in ${Math.round(elapsed)} ms`).to.be.at.least(Math.floor((elapsed / interval) * 0.7));
    expect(evictions).to.deep.equal([]);

    // Reading again, the watcher finds what was in flight and then its status.
    call.resume();
    const ended = await status;
    expect(ended.code).to.equal(grpc.status.RESOURCE_EXHAUSTED);
    expect(ended.details).to.match(/^watcher too slow: 20 events buffered$/);
    expect(received, "the watcher got only part of the events").to.be.below(2 * churns);
    console.log(
      `      ${2 * churns} events in ${Math.round(elapsed)} ms; the paused watcher got ${received} before the cut; steady got ${steadyPings} pings (one per ${interval} ms)`,
    );
  });
});
