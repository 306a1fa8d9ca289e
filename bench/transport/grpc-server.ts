/** bench:transport, grpc-js: a bidi method whose messages are raw bytes (no protobuf), one call per client. */
import * as grpc from "@grpc/grpc-js";
import { ready, serveRounds } from "./rounds.js";
import { BYTES_METHOD, MESSAGE } from "./wire.js";

const rounds = serveRounds<grpc.ServerDuplexStream<Buffer, Buffer>>((call) => call.write(MESSAGE));
const server = new grpc.Server();
server.addService(
  { sync: BYTES_METHOD },
  {
    sync: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      rounds.targets.add(call);
      const forget = () => rounds.targets.delete(call);
      call.on("data", (message: Buffer) => {
        if (message.length > 0) rounds.answered();
      });
      call.on("end", forget);
      call.on("error", forget);
    },
  },
);
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  ready(port);
});
