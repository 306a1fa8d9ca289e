/**
 * bench:transport, bare node:http2 speaking gRPC's framing by hand (a 5-byte
 * prefix per message, one stream per client, the same clients as grpc-js's):
 * what HTTP/2 in Node costs without grpc-js's per-call layers.
 */
import http2 from "node:http2";
import { ready, serveRounds } from "./rounds.js";
import { MESSAGE } from "./wire.js";

const framed = Buffer.alloc(5 + MESSAGE.length);
framed.writeUInt32BE(MESSAGE.length, 1);
MESSAGE.copy(framed, 5);

const rounds = serveRounds<http2.ServerHttp2Stream>((stream) => stream.write(framed));
const server = http2.createServer();
server.on("stream", (stream) => {
  stream.respond({ ":status": 200, "content-type": "application/grpc" });
  rounds.targets.add(stream);
  // Answers are a few bytes: a DATA frame holds whole messages (a message split across frames would be miscounted, not lost).
  stream.on("data", (chunk: Buffer) => {
    for (let at = 0; at + 5 <= chunk.length; at += 5 + chunk.readUInt32BE(at + 1)) {
      if (chunk.readUInt32BE(at + 1) > 0) rounds.answered();
    }
  });
  stream.on("close", () => rounds.targets.delete(stream));
  stream.on("error", () => {});
});
server.listen(0, "127.0.0.1", () => ready((server.address() as { port: number }).port));
