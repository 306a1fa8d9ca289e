// AdminService.Run, GetJob and ListJobs on one master: a real master, real slaves and clients on 127.0.0.1.
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import {
  AdminService,
  type GetJobRequest,
  GetJobRequestSchema,
  type GetJobResponse,
  GetJobResponseSchema,
  type RunRequest,
  RunRequestSchema,
  type RunResponse,
  RunResponseSchema,
} from "../../gen/netsync/v1/admin_pb.js";
import type { RunCallOptions, RunEvent } from "../../src/admin-client.js";
import { Code } from "../../src/code.js";
import { methodPath, serviceDefinition } from "../../src/grpc-adapter.js";
import type { Job, Master } from "../../src/index.js";
import { adminImplementation } from "../../src/server/admin-service.js";
import { JobService } from "../../src/server/job-service.js";
import { adminClient, bufCurl } from "../grpc-helpers.js";
import { cleanup, gate, rejection, sleep, startMaster, startSlave, track, waitFor, within } from "../helpers.js";

/** Every event of one Run call, until it ends. */
async function runAll(address: string, data: string, options: RunCallOptions): Promise<RunEvent[]> {
  const events: RunEvent[] = [];
  for await (const event of adminClient(address).run(data, options)) events.push(event);
  return events;
}

/** Opens Run on a plain grpc-js client (cancelled by cleanup()): the messages as they come, and the status. */
function rawRun(address: string, init: MessageInitShape<typeof RunRequestSchema>) {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), { "grpc.use_local_subchannel_pool": 1 });
  track(() => client.close());
  const call = client.makeServerStreamRequest(
    methodPath(AdminService.method.run),
    (value: RunRequest) => Buffer.from(toBinary(RunRequestSchema, value)),
    (bytes: Buffer) => fromBinary(RunResponseSchema, bytes),
    create(RunRequestSchema, init),
  );
  track(() => call.cancel());
  const messages: RunResponse[] = [];
  call.on("data", (message: RunResponse) => messages.push(message));
  call.on("error", () => {});
  const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
  return { call, messages, status };
}

/** Counts the job follows open on `master`'s jobs (Run streams follow their job), by wrapping what run() returns. */
function countFollows(master: Master): { open: () => number; jobs: Job[] } {
  let open = 0;
  const jobs: Job[] = [];
  const run = master.run.bind(master);
  master.run = async (custom, options) => {
    const job = await run(custom, options);
    jobs.push(job);
    const follow = job.follow.bind(job);
    job.follow = (listener, onDone) => {
      open++;
      const stop = follow(listener, onDone);
      let stopped = false;
      return () => {
        if (!stopped) open--;
        stopped = true;
        stop();
      };
    };
    return job;
  };
  return { open: () => open, jobs };
}

describe("AdminService jobs (Run, GetJob, ListJobs)", function () {
  this.timeout(15_000);
  afterEach(cleanup);

  it("Run streams started, then each slave's result as it comes (ok, error, timeout, not-connected), then the summary", async () => {
    const master = await startMaster({ name: "m1" });
    const mute = gate();
    await startSlave(master.address, { id: "w-ok", onCommand: (c) => `ran ${c.data}` });
    await startSlave(master.address, {
      id: "w-err",
      onCommand: () => {
        throw new Error("disk full");
      },
    });
    await startSlave(master.address, { id: "w-mute", onCommand: () => mute.promise });
    const events = await within(
      runAll(master.address, "uptime", { ids: ["w-ok", "w-err", "w-mute", "w-gone"], timeout: 400 }),
      5_000,
      "the whole Run stream",
    );
    mute.release();
    expect(events.map((e) => e.type)).to.deep.equal(["started", "result", "result", "result", "result", "summary"]);
    const started = events[0] as Extract<RunEvent, { type: "started" }>;
    expect(started).to.deep.include({ targets: ["w-err", "w-gone", "w-mute", "w-ok"], unansweredMasters: [], masterId: "m1" });
    expect(started.jobId).to.match(/^\d{17}-[0-9a-f]{6}$/);
    const results = events.flatMap((e) => (e.type === "result" ? [e.result] : []));
    const byId = new Map(results.map((r) => [r.slaveId, r]));
    expect(byId.get("w-ok")).to.deep.include({ status: "ok", data: "ran uptime", masterId: "m1", deliveries: 1 });
    expect(byId.get("w-err")).to.deep.include({ status: "error", masterId: "m1", deliveries: 1 });
    expect(byId.get("w-err")?.error).to.contain("disk full");
    expect(byId.get("w-mute")).to.deep.include({ status: "timeout", deliveries: 1 });
    expect(byId.get("w-mute")!.latencyMs).to.be.at.least(400);
    expect(byId.get("w-gone")).to.deep.include({ status: "not-connected", deliveries: 0, masterId: "" });
    // In the order they came: the one that waited out its timeout last.
    expect(results.at(-1)?.slaveId).to.equal("w-mute");
    const summary = events.at(-1) as Extract<RunEvent, { type: "summary" }>;
    expect(summary.summary).to.deep.include({
      jobId: started.jobId,
      targets: 4,
      ok: 1,
      error: 1,
      timeout: 1,
      notConnected: 1,
      expired: 0,
      pending: 0,
    });
    expect(summary.summary.finishedAt).to.be.instanceOf(Date);
    expect(summary.summary.finishedAt!.getTime()).to.be.at.least(summary.summary.startedAt.getTime());
    // The results the stream carried are the job's own, in the same order.
    expect(master.job(started.jobId)?.record().results).to.deep.equal(results);
  });

  it("Run takes a selector or all, fixed at start, and streams an empty job at once", async () => {
    const master = await startMaster();
    await startSlave(master.address, { id: "db-1", labels: { role: "db" }, onCommand: () => "db" });
    await startSlave(master.address, { id: "web-1", labels: { role: "web" }, onCommand: () => "web" });
    const [selected, all, none] = await Promise.all([
      runAll(master.address, "x", { selector: "role=db" }),
      runAll(master.address, "x", { all: true }),
      runAll(master.address, "x", { selector: "role=none" }),
    ]);
    expect(selected[0]).to.deep.include({ type: "started", targets: ["db-1"] });
    expect(selected.at(-1)).to.have.nested.property("summary.ok", 1);
    expect(all[0]).to.deep.include({ type: "started", targets: ["db-1", "web-1"] });
    expect(all.at(-1)).to.have.nested.property("summary.ok", 2);
    expect(none.map((e) => e.type)).to.deep.equal(["started", "summary"]);
    expect(none.at(-1)).to.have.nested.property("summary.targets", 0);
  });

  it("refuses a request without exactly one of slave_ids, selector and all, or with bad values, with INVALID_ARGUMENT", async () => {
    const master = await startMaster();
    const admin = adminClient(master.address);
    const cases: [RunCallOptions, RegExp][] = [
      [{}, /no target: give exactly one of slave_ids, selector or all/],
      [{ ids: ["a"], all: true }, /give exactly one of slave_ids, selector or all \(got slave_ids and all\)/],
      [{ selector: "r=1", all: true }, /\(got selector and all\)/],
      [{ ids: ["a"], selector: "r=1", all: true }, /\(got slave_ids and selector and all\)/],
      [{ selector: "role in" }, /selector/],
      [{ ids: [""] }, /bad target "": slave id is empty/],
      [{ all: true, deliverWithin: 11 * 60_000 }, /deliverWithin must be/],
    ];
    for (const [options, message] of cases) {
      const error = await rejection(
        (async () => {
          for await (const _ of admin.run("x", options));
        })(),
        3_000,
        JSON.stringify(options),
      );
      expect(error.code, JSON.stringify(options)).to.equal(Code.INVALID_ARGUMENT);
      expect(error.message, JSON.stringify(options)).to.match(message);
    }
    const noCustom = rawRun(master.address, { all: true });
    const status = await within(noCustom.status, 3_000, "the status");
    expect(status.code).to.equal(Code.INVALID_ARGUMENT);
    expect(status.details).to.equal("custom is required");
    expect(noCustom.messages).to.deep.equal([]);
    expect(master.jobs(), "no job was started").to.deep.equal([]);
  });

  it("GetJob answers NOT_FOUND for an unknown id; after a run, GetJob and ListJobs show the job", async () => {
    const master = await startMaster({ name: "m-get" });
    const admin = adminClient(master.address);
    const unknown = await rejection(admin.getJob("20200101000000000-000000"), 3_000, "GetJob of an unknown id");
    expect(unknown.code).to.equal(Code.NOT_FOUND);
    expect(unknown.message).to.match(/no job with id "20200101000000000-000000"/);
    expect(await admin.listJobs()).to.deep.equal([]);

    await startSlave(master.address, { id: "g1", onCommand: (c) => `echo ${c.data}` });
    const first = await runAll(master.address, "one", { ids: ["g1", "g-away"], timeout: 2_000 });
    const second = await runAll(master.address, "two", { all: true, timeout: 3_000, deliverWithin: 1_000 });
    const firstId = (first[0] as Extract<RunEvent, { type: "started" }>).jobId;
    const secondId = (second[0] as Extract<RunEvent, { type: "started" }>).jobId;

    const record = await admin.getJob(firstId);
    expect(record).to.deep.equal(master.job(firstId)!.record());
    expect(record).to.deep.include({
      id: firstId,
      masterId: "m-get",
      data: "one",
      selector: "",
      timeout: 2_000,
      targets: ["g-away", "g1"],
      unansweredMasters: [],
    });
    expect(record.deliverWithin).to.equal(undefined);
    expect(record.results.map((r) => [r.slaveId, r.status])).to.have.deep.members([
      ["g1", "ok"],
      ["g-away", "not-connected"],
    ]);
    expect(record.summary).to.deep.include({ targets: 2, ok: 1, notConnected: 1, pending: 0 });
    expect((await admin.getJob(secondId)).deliverWithin).to.equal(1_000);

    const listed = await admin.listJobs();
    expect(listed.map((j) => j.id)).to.deep.equal([secondId, firstId]);
    expect(listed.map((j) => j.results)).to.deep.equal([[], []]);
    expect(listed[1]).to.deep.equal({ ...record, results: [] });
    expect((await admin.listJobs(1)).map((j) => j.id)).to.deep.equal([secondId]);
  });

  it("GetJob and ListJobs stay within the message limit: RESOURCE_EXHAUSTED for a job too big, fewer jobs listed", async () => {
    const master = await startMaster({ maxMessageBytes: 16 * 1024 });
    const admin = adminClient(master.address);
    // 80 targets with 100-character ids: ~8 KiB of targets per job, ~20 KiB with their results.
    const ids = Array.from({ length: 80 }, (_, i) => `${String(i).padStart(3, "0")}-${"y".repeat(96)}`);
    const jobs: Job[] = [];
    for (let i = 0; i < 3; i++) {
      const job = await master.run("x", { ids });
      await within(job.done, 2_000, "a job of absent slaves");
      jobs.push(job);
    }
    const tooBig = await rejection(admin.getJob(jobs[0]!.id, 0), 3_000, "GetJob of a big job, whole");
    expect(tooBig.code).to.equal(Code.RESOURCE_EXHAUSTED);
    expect(tooBig.message).to.match(/job \S+ is too big for one response: \d+ bytes with its 80 results, the limit is 12288/);
    const listed = await admin.listJobs();
    expect(listed.map((j) => j.id)).to.deep.equal([jobs[2]!.id]);
    expect(listed[0]!.targets).to.deep.equal(ids);
  });

  it("a job whose targets pass one message: Run sends the rest in JobTargets, GetJob reads it in pages, ListJobs lists the first 1,000", async () => {
    const master = await startMaster({ maxMessageBytes: 16 * 1024 });
    const admin = adminClient(master.address);
    // 150 targets with 100-character ids: ~15 KiB of ids, more than the 12 KiB one message may carry here (less its headroom),
    // but a request the master still takes.
    const ids = Array.from({ length: 150 }, (_, i) => `${String(i).padStart(3, "0")}-${"z".repeat(96)}`);
    const raw = rawRun(master.address, { custom: { data: "x" }, slaveIds: ids, timeout: { seconds: 2n } });
    expect((await within(raw.status, 5_000, "the raw Run")).code).to.equal(grpc.status.OK);
    const [started, ...more] = raw.messages.filter((m) => m.event.case === "started" || m.event.case === "targets");
    expect(started?.event.case).to.equal("started");
    expect(more.length, "JobTargets messages").to.be.at.least(1);
    const sent = raw.messages.flatMap((m) => (m.event.case === "started" || m.event.case === "targets" ? m.event.value.slaveIds : []));
    expect(sent).to.deep.equal(ids);
    expect(started?.event.case === "started" && started.event.value.targetCount).to.equal(150);
    // The first result comes after every target.
    const firstResult = raw.messages.findIndex((m) => m.event.case === "result");
    expect(firstResult).to.equal(1 + more.length);

    const events = await runAll(master.address, "y", { ids, timeout: 2_000 });
    const first = events[0] as Extract<RunEvent, { type: "started" }>;
    expect(first.type).to.equal("started");
    expect(first.targets).to.deep.equal(ids);
    expect(events.filter((e) => e.type === "started")).to.have.length(1);
    expect(events.filter((e) => e.type === "result")).to.have.length(150);

    // ListJobs lists as many of its targets as fit one message, with the count.
    const [listedBig] = await admin.listJobs(1);
    expect(listedBig?.summary.targets).to.equal(150);
    expect(listedBig?.targets.length).to.be.within(1, 149);
    expect(listedBig?.targets).to.deep.equal(ids.slice(0, listedBig?.targets.length));

    // Whole, it is too big; in pages (the client halves a page that does not fit) every target and result comes.
    expect((await rejection(admin.getJob(first.jobId, 0), 3_000, "GetJob whole")).code).to.equal(Code.RESOURCE_EXHAUSTED);
    for (const pageSize of [2_000, 7]) {
      const record = await admin.getJob(first.jobId, pageSize);
      expect(record.targets).to.deep.equal(ids);
      expect(record.results.map((r) => r.slaveId)).to.deep.equal(ids);
      expect(record.results.every((r) => r.status === "not-connected")).to.equal(true);
      expect(record.summary).to.include({ targets: 150, notConnected: 150 });
    }

    // ListJobs: each job's first 1,000 targets at most, the count in full.
    const wide = await startMaster();
    const many = Array.from({ length: 1_500 }, (_, i) => `w${String(i).padStart(4, "0")}`);
    const job = await wide.run("z", { ids: many, timeout: 1_000 });
    await within(job.done, 5_000, "the wide job");
    const [listed] = await adminClient(wide.address).listJobs();
    expect(listed?.targets).to.deep.equal(many.slice(0, 1_000));
    expect(listed?.summary.targets).to.equal(1_500);
    expect((await adminClient(wide.address).getJob(job.id)).targets).to.deep.equal(many);
  });

  it("GetJob refuses a page token it did not give, and a token without page_size, with INVALID_ARGUMENT", async () => {
    const master = await startMaster();
    const job = await master.run("x", { ids: ["p1", "p2", "p3"], timeout: 500 });
    await within(job.done, 3_000, "the job");
    const client = new grpc.Client(master.address, grpc.credentials.createInsecure());
    track(() => client.close());
    const getJob = (init: MessageInitShape<typeof GetJobRequestSchema>) =>
      new Promise<{ code: number; details: string; response?: GetJobResponse }>((resolve) =>
        client.makeUnaryRequest(
          methodPath(AdminService.method.getJob),
          (value: GetJobRequest) => Buffer.from(toBinary(GetJobRequestSchema, value)),
          (bytes: Buffer) => fromBinary(GetJobResponseSchema, bytes),
          create(GetJobRequestSchema, init),
          (err, response) => resolve(err ? { code: err.code ?? -1, details: err.details ?? "" } : { code: 0, details: "", response }),
        ),
      );
    const page1 = await getJob({ jobId: job.id, pageSize: 2 });
    expect(page1.code).to.equal(0);
    expect(page1.response?.job?.started?.slaveIds).to.deep.equal(["p1", "p2"]);
    expect(page1.response?.job?.started?.targetCount).to.equal(3);
    const page2 = await getJob({ jobId: job.id, pageSize: 2, pageToken: page1.response?.nextPageToken ?? "" });
    expect(page2.response?.job?.started?.slaveIds).to.deep.equal(["p3"]);
    expect(page2.response?.nextPageToken).to.equal("");
    for (const bad of [
      { pageSize: 2, pageToken: "nonsense" },
      { pageSize: 0, pageToken: page1.response?.nextPageToken ?? "" },
      { pageSize: -1 },
    ]) {
      const answer = await getJob({ jobId: job.id, ...bad });
      expect(answer.code, JSON.stringify(bad)).to.equal(grpc.status.INVALID_ARGUMENT);
    }
  });

  it("a client that cancels mid-run leaves the job running, followed by no one; GetJob shows it finish", async () => {
    const master = await startMaster();
    const follows = countFollows(master);
    const slow = gate();
    await startSlave(master.address, { id: "c-fast", onCommand: () => "fast" });
    await startSlave(master.address, { id: "c-slow", onCommand: () => slow.promise });
    const abort = new AbortController();
    const seen: RunEvent[] = [];
    const admin = adminClient(master.address);
    for await (const event of admin.run("x", { ids: ["c-fast", "c-slow"], timeout: 5_000, signal: abort.signal })) {
      seen.push(event);
      if (event.type === "result") abort.abort();
    }
    expect(seen.map((e) => e.type)).to.deep.equal(["started", "result"]);
    const job = follows.jobs[0]!;
    await waitFor(
      () => follows.open() === 0,
      2_000,
      () => `the Run stream to stop following (${follows.open()} open)`,
    );
    expect(job.finished, "the job runs on").to.equal(false);
    expect((await admin.getJob(job.id)).summary).to.deep.include({ ok: 1, pending: 1 });
    slow.release("slow");
    const summary = await within(job.done, 3_000, "the job's end");
    expect(summary).to.deep.include({ ok: 2, pending: 0 });
    expect((await admin.getJob(job.id)).results.map((r) => r.data)).to.deep.equal(["fast", "slow"]);
    expect(follows.open()).to.equal(0);
  });

  it("a master that closes ends its jobs: a Run stream gets their last results and the summary, then OK", async () => {
    const master = await startMaster({ name: "m-close" });
    const never = gate();
    await startSlave(master.address, { id: "hang", onCommand: () => never.promise });
    const events: RunEvent[] = [];
    const done = (async () => {
      for await (const event of adminClient(master.address).run("x", { ids: ["hang"], timeout: 30_000 })) events.push(event);
    })();
    await waitFor(() => master.jobs().length === 1 && events.length === 1, 2_000, "the job started");
    await master.close();
    await within(done, 3_000, "the Run stream's end");
    expect(events.map((e) => e.type)).to.deep.equal(["started", "result", "summary"]);
    const result = (events[1] as Extract<RunEvent, { type: "result" }>).result;
    expect(result).to.deep.include({ slaveId: "hang", status: "not-connected" });
    expect(result.error).to.match(/master m-close shut down before a result came/);
  });

  it("a client that does not read gets no more than grpc-js takes; when it reads again the stream goes on where it stopped", async () => {
    const master = await startMaster();
    // Served here too, so the test holds the Run calls and can see what grpc-js buffers for them.
    const calls: grpc.ServerWritableStream<unknown, unknown>[] = [];
    const jobs = new JobService(master);
    const implementation = adminImplementation(master, undefined, jobs);
    const run = implementation[AdminService.method.run.localName] as grpc.handleServerStreamingCall<unknown, unknown>;
    implementation[AdminService.method.run.localName] = (call: grpc.ServerWritableStream<unknown, unknown>) => {
      calls.push(call);
      run(call);
    };
    const server = new grpc.Server();
    server.addService(serviceDefinition(AdminService), implementation);
    track(() => server.forceShutdown());
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, bound) => (err ? reject(err) : resolve(bound))),
    );

    // 3,000 targets that are not connected: their results come at once; with 120-character ids, ~0.5 MB of messages.
    const ids = Array.from({ length: 3_000 }, (_, i) => `${String(i).padStart(4, "0")}-${"x".repeat(115)}`);
    const raw = rawRun(`127.0.0.1:${port}`, { custom: { data: "x" }, slaveIds: ids });
    await waitFor(() => raw.messages.length > 0, 3_000, "the started message");
    raw.call.pause();
    const job = master.jobs()[0]!;
    await within(job.done, 3_000, "every result");
    await sleep(100); // for anything the service would still write on its own
    const buffered = calls[0]!.writableLength;
    expect(buffered, "messages grpc-js holds for the paused client").to.be.at.most(32);
    expect(calls[0]!.writableEnded, "the summary waits behind the results").to.equal(false);
    expect(raw.messages.length, "messages the paused client got").to.be.below(ids.length);
    expect(jobs.size).to.equal(1);

    raw.call.resume();
    const status = await within(raw.status, 5_000, "the end of the stream");
    expect(status.code).to.equal(Code.OK);
    const cases = raw.messages.map((m) => m.event.case);
    expect(cases[0]).to.equal("started");
    expect(cases.slice(1, -1)).to.have.length(ids.length);
    expect(cases.slice(1, -1).every((c) => c === "result")).to.equal(true);
    expect(cases.at(-1)).to.equal("summary");
    // Every result once, in the order the job settled them.
    const streamed = raw.messages.flatMap((m) => (m.event.case === "result" ? [m.event.value.slaveId] : []));
    expect(streamed).to.deep.equal(job.record().results.map((r) => r.slaveId));
    expect(jobs.size).to.equal(0);
    console.log(`      ${ids.length} results; grpc-js held ${buffered} messages for the paused client`);
  });

  it("buf curl drives Run, GetJob and ListJobs through reflection", async () => {
    const master = await startMaster({ name: "curl-m" });
    await startSlave(master.address, { id: "curl-a", onCommand: (c) => `hi ${c.data}` });
    const url = `http://${master.address}/netsync.v1.AdminService`;
    const run = await bufCurl([`${url}/Run`, "-d", '{"custom": {"data": "there"}, "slave_ids": ["curl-a", "curl-b"], "timeout": "2s"}']);
    expect(run.code, run.stderr).to.equal(0);
    // One JSON document per message, as buf curl prints a stream.
    const messages = run.stdout
      .trim()
      .split(/\n(?=\{)/)
      .map((text) => JSON.parse(text) as Record<string, Record<string, unknown>>);
    expect(messages.map((m) => Object.keys(m)[0])).to.deep.equal(["started", "result", "result", "summary"]);
    const jobId = messages[0]!.started!.jobId as string;
    expect(messages[0]!.started).to.deep.include({ slaveIds: ["curl-a", "curl-b"], masterId: "curl-m" });
    const ok = messages.find((m) => m.result?.slaveId === "curl-a")!.result!;
    expect(ok).to.deep.include({ status: "JOB_RESULT_STATUS_OK", data: "hi there", masterId: "curl-m", deliveries: 1 });
    expect(messages.find((m) => m.result?.slaveId === "curl-b")!.result!.status).to.equal("JOB_RESULT_STATUS_NOT_CONNECTED");
    expect(messages[3]!.summary).to.deep.include({ jobId, targets: 2, ok: 1, notConnected: 1 });

    const [got, listed, missing] = await Promise.all([
      bufCurl([`${url}/GetJob`, "-d", JSON.stringify({ job_id: jobId })]),
      bufCurl([`${url}/ListJobs`, "-d", "{}"]),
      bufCurl([`${url}/GetJob`, "-d", '{"job_id": "nope"}']),
    ]);
    expect(got.code, got.stderr).to.equal(0);
    const job = (JSON.parse(got.stdout) as { job: { started: { jobId: string }; data: string; timeout: string; results: unknown[] } }).job;
    expect(job).to.deep.include({ data: "there", timeout: "2s" });
    expect(job.started.jobId).to.equal(jobId);
    expect(job.results).to.have.length(2);
    expect(listed.code, listed.stderr).to.equal(0);
    const jobs = (JSON.parse(listed.stdout) as { jobs: Array<{ started: { jobId: string }; results?: unknown[] }> }).jobs;
    expect(jobs.map((j) => j.started.jobId)).to.deep.equal([jobId]);
    expect(jobs[0]!.results).to.equal(undefined);
    expect(missing.code).to.not.equal(0);
    expect(missing.stderr).to.match(/not_found/i);
  });
});
