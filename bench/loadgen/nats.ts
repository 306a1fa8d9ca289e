/**
 * Load generator for NATS: one `nats` client connection per slave. Each
 * announces itself on "ns.hello", answers every "ns.ping" with its id on
 * "ns.pong", and takes broadcasts on "ns.cmd". The echo probe is a NATS
 * request to "ns.echo", answered by the master (two hops through the server,
 * where the gRPC and Socket.IO probes make one trip to the server and back).
 */
import { connect, type Msg, type NatsError } from "nats";
import { hrNow } from "../lib/common.js";
import { config, ended, run, state } from "./core.js";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function open(index: number): Promise<void> {
  const id = encoder.encode(`${config.prefix}${index}`);
  const nc = await connect({
    servers: config.natsUrl!,
    noEcho: true,
    reconnect: false,
    // The client's own keepalive to the server stays at the NATS default (2 min).
  });
  nc.subscribe("ns.ping", {
    callback: () => {
      state.pings++;
      nc.publish("ns.pong", id);
      if (state.probing) {
        nc.request("ns.echo", encoder.encode(`e:${hrNow()}`), { timeout: 30_000 }).then(
          (reply) => state.rtt.push(hrNow() - Number(decoder.decode(reply.data).slice(2))),
          () => ended("echo request failed"),
        );
      }
    },
  });
  nc.subscribe("ns.cmd", {
    callback: (_err: NatsError | null, msg: Msg) => state.bcast.push(hrNow() - Number(decoder.decode(msg.data).slice(2))),
  });
  nc.publish("ns.hello", id);
  void nc.closed().then((err) => ended(err ? `closed: ${err.message}` : "closed"));
}

await run(open);
