/**
 * grpc-adapter.ts's two reaches into grpc-js behaviour that grpc-js does not
 * promise: rejectCall() (an error emitted on a server stream becomes its
 * status) and http2StreamOf() (the HTTP/2 stream under a server call, found
 * through private fields). Both are checked on real calls through a real
 * MasterServer, with its auth interceptor in the chain as in production, so
 * an upgrade of grpc-js that changes either fails here, loudly, rather than
 * silently leaving unread streams open or statuses unsent.
 */
import { constants as http2Constants } from "node:http2";
import { expect } from "chai";
import { Code } from "../src/code.js";
import type { SyncCall } from "../src/fleet/slave-connection.js";
import { http2StreamOf, rejectCall } from "../src/grpc-adapter.js";
import { silentLogger } from "../src/logger.js";
import { MasterServer } from "../src/server/master-server.js";
import { cleanup, rawClient, statusOf, track, within } from "./helpers.js";

/** A MasterServer on an ephemeral port whose Sync calls are handed to the test. */
async function server(options: { token?: string } = {}) {
  const calls: SyncCall[] = [];
  const waiters: ((call: SyncCall) => void)[] = [];
  const master = new MasterServer({
    heartbeatTimeout: 2_000,
    maxMessageBytes: 1024 * 1024,
    reflection: false,
    tls: undefined,
    token: options.token,
    serverOptions: {},
    log: silentLogger(),
    onSync: (call) => {
      calls.push(call);
      waiters.shift()?.(call);
    },
    admin: {},
  });
  const port = await master.bind("127.0.0.1", 0);
  master.setServing(true);
  track(() => master.shutdown(0));
  const nextCall = () =>
    within(new Promise<SyncCall>((resolve) => (calls.length > 0 ? resolve(calls.shift()!) : waiters.push(resolve))), 2_000, "a Sync call");
  return { address: `127.0.0.1:${port}`, nextCall };
}

describe("grpc-adapter: what NetSync relies on in grpc-js", () => {
  afterEach(cleanup);

  it("http2StreamOf() finds the HTTP/2 stream under a real server call (grpc-js internals as expected)", async () => {
    const { address, nextCall } = await server();
    const raw = rawClient(address, { id: "s1" });
    const call = await nextCall();
    const stream = http2StreamOf(call);
    expect(stream, "grpc-js changed the shape of its server call: http2StreamOf() must be updated").to.not.equal(undefined);
    expect(stream!.constructor.name).to.equal("ServerHttp2Stream");
    expect(stream!.closed).to.equal(false);
    // Resetting it is what it is found for: the peer sees the stream cancelled.
    stream!.close(http2Constants.NGHTTP2_CANCEL);
    expect((await statusOf(raw)).code).to.equal(Code.CANCELLED);
  });

  it("http2StreamOf() finds it through the auth interceptor's call chain too (a master with a token)", async () => {
    const { address, nextCall } = await server({ token: "t0ken" });
    rawClient(address, { id: "s1", metadata: { authorization: "Bearer t0ken" } });
    const stream = http2StreamOf(await nextCall());
    expect(stream?.constructor.name).to.equal("ServerHttp2Stream");
  });

  it("rejectCall() ends a call with the given status code and details", async () => {
    const { address, nextCall } = await server();
    const raw = rawClient(address, { id: "s1" });
    rejectCall(await nextCall(), Code.INVALID_ARGUMENT, "netsync-slave-id: slave id is empty");
    const status = await statusOf(raw);
    expect([status.code, status.details]).to.deep.equal([Code.INVALID_ARGUMENT, "netsync-slave-id: slave id is empty"]);
  });
});
