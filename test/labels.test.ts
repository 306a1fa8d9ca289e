import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { Code } from "../src/code.js";
import { NetSyncError } from "../src/errors.js";
import { type Custom, Slave } from "../src/index.js";
import { checkLabels, formatLabels, parseLabels } from "../src/labels.js";
import { LABELS_METADATA_KEY, MAX_LABELS } from "../src/wire.js";
import { adminClient } from "./grpc-helpers.js";
import { cleanup, once, rawClient, startMaster, startSlave, statusOf, waitFor } from "./helpers.js";

function problem(fn: () => unknown): NetSyncError {
  try {
    fn();
  } catch (err) {
    return err as NetSyncError;
  }
  throw new Error("no error");
}

describe("labels", () => {
  afterEach(cleanup);

  describe("parsing and checking", () => {
    it("parses key=value lists, with Kubernetes' character set, prefixes and empty values", () => {
      expect(parseLabels("")).to.deep.equal({});
      expect(parseLabels("region=eu, role=db")).to.deep.equal({ region: "eu", role: "db" });
      expect(parseLabels("example.com/team=a-b_c.d,empty=")).to.deep.equal({ "example.com/team": "a-b_c.d", empty: "" });
      expect(Object.isFrozen(parseLabels("a=b"))).to.equal(true);
      expect(formatLabels({ region: "eu", role: "db" })).to.equal("region=eu,role=db");
      expect(parseLabels(formatLabels({ a: "1", b: "" }))).to.deep.equal({ a: "1", b: "" });
    });

    it("refuses bad labels with INVALID_ARGUMENT naming the bad one", () => {
      const cases: Array<[string, RegExp]> = [
        ["region", /"region" is not key=value/],
        ["region=eu,region=us", /key "region" appears twice/],
        ["-bad=1", /key "-bad"/],
        ["ok=1,x=<img src=x>", /label "x=<img src=x>": the value/],
        [`k=${"v".repeat(64)}`, /the value must be/],
        [`${"k".repeat(64)}=1`, /key "k{64}"/],
        ["UPPER.example/x=1", /prefix must be a DNS subdomain/],
        [Array.from({ length: MAX_LABELS + 1 }, (_, i) => `k${i}=v`).join(","), /17 labels; at most 16/],
      ];
      for (const [text, message] of cases) {
        const err = problem(() => parseLabels(text));
        expect(err, text).to.be.instanceOf(NetSyncError);
        expect(err.code, text).to.equal(Code.INVALID_ARGUMENT);
        expect(err.message, text)
          .to.match(message)
          .and.match(new RegExp(`^${LABELS_METADATA_KEY}: `));
      }
      expect(problem(() => checkLabels({ "bad key": "x" })).message).to.contain('key "bad key"');
      expect(checkLabels({ region: "eu" })).to.deep.equal({ region: "eu" });
    });
  });

  describe("on a master", () => {
    it("a slave's labels are registered and listed (library, ListSlaves, the connect event)", async () => {
      const master = await startMaster();
      const connected = once(master, "slave:connected");
      await startSlave(master.address, { id: "db-1", labels: { region: "eu", role: "db" } });
      const [event] = await connected;
      expect(event.slave.labels).to.deep.equal({ region: "eu", role: "db" });
      expect(master.slaves()[0]!.labels).to.deep.equal({ region: "eu", role: "db" });
      const admin = adminClient(master.address);
      const listed = await admin.listSlaves();
      expect(listed.slaves[0]!.labels).to.deep.equal({ region: "eu", role: "db" });
      expect(listed.slaves[0]!.masterId).to.equal(master.id);
    });

    it("a raw gRPC client sets them with the netsync-slave-labels header (as grpcurl -H would)", async () => {
      const master = await startMaster();
      const raw = rawClient(master.address, { id: "raw-1", autoPong: true, metadata: { [LABELS_METADATA_KEY]: "region=us,tier=gold" } });
      await raw.headers;
      await waitFor(() => master.has("raw-1"), 1_000, "raw-1 registered");
      expect(master.slaves()[0]!.labels).to.deep.equal({ region: "us", tier: "gold" });
    });

    it("bad labels get INVALID_ARGUMENT naming the label, and the slave is not registered", async () => {
      const master = await startMaster();
      const connected: string[] = [];
      master.on("slave:connected", (e) => connected.push(e.slave.id));
      const raw = rawClient(master.address, { id: "bad-1", metadata: { [LABELS_METADATA_KEY]: "region=eu,role=<script>" } });
      const status = await statusOf(raw);
      expect(status.code).to.equal(grpc.status.INVALID_ARGUMENT);
      expect(status.details).to.contain('label "role=<script>"');
      expect(master.has("bad-1")).to.equal(false);
      expect(connected).to.deep.equal([]);
      // The Slave class refuses them before dialling.
      expect(() => new Slave({ master: master.address, labels: { "bad key": "x" } })).to.throw(NetSyncError, /bad key/);
    });

    it("selectors pick slaves for slaves(), broadcast(), ListSlaves and Broadcast; a malformed one is INVALID_ARGUMENT", async () => {
      const master = await startMaster();
      const received = new Map<string, string[]>();
      const fleet: Array<[string, Record<string, string>]> = [
        ["eu-db", { region: "eu", role: "db" }],
        ["eu-web", { region: "eu", role: "web" }],
        ["us-db", { region: "us", role: "db" }],
        ["plain", {}],
      ];
      for (const [id, labels] of fleet) {
        received.set(id, []);
        await startSlave(master.address, { id, labels, onCommand: (c: Custom) => void received.get(id)!.push(c.data) });
      }
      const ids = (list: Array<{ id: string }>) => list.map((s) => s.id).sort();
      expect(ids(master.slaves({ selector: "region=eu" }))).to.deep.equal(["eu-db", "eu-web"]);
      expect(ids(master.slaves({ selector: "region=eu,role!=db" }))).to.deep.equal(["eu-web"]);
      expect(ids(master.slaves({ selector: "role in (db)" }))).to.deep.equal(["eu-db", "us-db"]);
      expect(ids(master.slaves({ selector: "!region" }))).to.deep.equal(["plain"]);
      expect(() => master.slaves({ selector: "region=" + "," }))
        .to.throw(NetSyncError)
        .with.property("code", Code.INVALID_ARGUMENT);

      expect(master.broadcast("to-db", { selector: "role=db" })).to.equal(2);
      expect(() => master.broadcast("never", { selector: "role in db" })).to.throw(NetSyncError, /expected "\("/);

      const admin = adminClient(master.address);
      expect(ids((await admin.listSlaves({ selector: "region=us" })).slaves)).to.deep.equal(["us-db"]);
      expect(await admin.broadcast("to-eu", { selector: "region=eu" })).to.equal(2);
      const bad = await admin.listSlaves({ selector: "region in (eu" }).then(
        () => undefined,
        (err: NetSyncError) => err,
      );
      expect(bad?.code).to.equal(Code.INVALID_ARGUMENT);
      expect(bad?.message).to.contain('selector "region in (eu"');

      await waitFor(() => received.get("eu-db")!.length === 2 && received.get("eu-web")!.length === 1, 2_000, "commands delivered");
      expect(Object.fromEntries(received)).to.deep.equal({
        "eu-db": ["to-db", "to-eu"],
        "eu-web": ["to-eu"],
        "us-db": ["to-db"],
        plain: [],
      });
    });
  });
});
