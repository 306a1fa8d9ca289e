// The broadcast acknowledgement on the wire: asked for, it comes first and the count after; not asked
// for (a master of the previous version asking), the answer is the count alone, as before.
import { connect, createInbox, type Msg, type NatsConnection } from "@nats-io/transport-node";
import { expect } from "chai";
import { type BroadcastMessage, decodeMessage, encodeMessage, type PartMessage } from "../../src/cluster/messages.js";
import { Subjects } from "../../src/cluster/subjects.js";
import { waitFor } from "../support/wait.js";
import { Nodes } from "./helpers.js";
import { haveNatsServer, NatsServer } from "./nats-server.js";

describe("fleet broadcast on the wire: the acknowledgement", function () {
  this.timeout(10_000);
  let server: NatsServer;
  let nc: NatsConnection;
  const nodes = new Nodes();

  before(async function () {
    if (!(await haveNatsServer())) this.skip();
    server = new NatsServer();
    await server.start();
    nc = await connect({ servers: [server.url] });
  });
  after(async () => {
    await nodes.closeAll();
    await nc?.close();
    await server?.kill();
  });

  /** The parts m1 answers to a broadcast request, in the order they arrived. */
  async function answersTo(request: BroadcastMessage, expected: number): Promise<PartMessage[]> {
    const inbox = createInbox();
    const got: PartMessage[] = [];
    const sub = nc.subscribe(inbox, {
      callback: (_err, msg: Msg) => {
        got.push(decodeMessage(msg.string(), "netsync") as PartMessage);
      },
    });
    nc.publish(new Subjects("netsync").broadcast("m1"), encodeMessage(request), { reply: inbox });
    await waitFor(() => got.length >= expected, 3_000, `${expected} answers: ${JSON.stringify(got)}`);
    await nc.flush();
    sub.unsubscribe();
    return got;
  }

  it("with ack: an accepted part first, then the count; without: the count alone", async () => {
    const { node, fleet } = nodes.add([server.url], "m1");
    await waitFor(() => node.connected, 3_000, "m1 connected");
    fleet.connect("s1");
    fleet.connect("s2");
    const base = { kind: "broadcast", cluster: "netsync", from: "tester", data: "x" } as const;
    const acked = await answersTo({ ...base, ack: true }, 2);
    expect(acked.map((p) => [p.accepted, p.count])).to.deep.equal([
      [true, undefined],
      [undefined, 2],
    ]);
    const legacy = await answersTo(base, 1);
    expect(legacy.map((p) => [p.accepted, p.count, p.parts])).to.deep.equal([[undefined, 2, 1]]);
    expect(fleet.sentLog.filter((s) => s.data === "x")).to.have.length(4);
  });

  it("an ack or accepted field that is not a boolean makes the message malformed", () => {
    const part = { kind: "part", cluster: "c", masterId: "m", address: "h:1", slavesHeld: 0, part: 0, parts: 1 };
    expect(decodeMessage(JSON.stringify({ ...part, accepted: true }), "c")).to.not.equal(undefined);
    expect(decodeMessage(JSON.stringify({ ...part, accepted: "yes" }), "c")).to.equal(undefined);
    const broadcast = { kind: "broadcast", cluster: "c", from: "m", data: "x" };
    expect(decodeMessage(JSON.stringify({ ...broadcast, ack: true }), "c")).to.not.equal(undefined);
    expect(decodeMessage(JSON.stringify({ ...broadcast, ack: 1 }), "c")).to.equal(undefined);
  });
});
