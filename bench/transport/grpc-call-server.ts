/**
 * bench:transport, grpc-js below its streams: the same raw-bytes bidi method,
 * but each call is driven through a server interceptor at grpc-js's call
 * level (a listener's onReceiveMessage, the call's sendMessage and
 * startRead), so no Node Duplex stream sits between the HTTP/2 stream and
 * the code. What a grpc-js server pays without that layer.
 */
import * as grpc from "@grpc/grpc-js";
import { ready, serveRounds } from "./rounds.js";
import { BYTES_METHOD, MESSAGE } from "./wire.js";

const noop = () => {};
const rounds = serveRounds<grpc.ServerInterceptingCallInterface>((call) => call.sendMessage(MESSAGE, noop));
const driver: grpc.ServerInterceptor = (method, call) => {
  if (method.path !== BYTES_METHOD.path) return new grpc.ServerInterceptingCall(call);
  return new grpc.ServerInterceptingCall(call, {
    start: (next) => {
      const forget = () => rounds.targets.delete(call);
      next({
        onReceiveMessage: (message: Buffer) => {
          if (message.length > 0) rounds.answered();
          call.startRead();
        },
        onReceiveHalfClose: () => {
          forget();
          call.sendStatus({ code: grpc.status.OK, details: "" });
        },
        onCancel: forget,
      });
      rounds.targets.add(call);
      call.sendMetadata(new grpc.Metadata());
      call.startRead();
    },
  });
};
const server = new grpc.Server({ interceptors: [driver] });
// The handler never sees a message: the interceptor above takes them all.
server.addService({ sync: BYTES_METHOD }, { sync: () => {} });
server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  ready(port);
});
