/**
 * bench:transport, Socket.IO (WebSocket only). `sio`: an emit with an
 * acknowledgement per socket, paced like the others. `sio-bcast`
 * (`{"broadcast":true}`): what bench:jobs compares NetSync's jobs against,
 * one `io.timeout(t).emitWithAck()` to every socket, the packet (and with
 * engine.io ≥ 6.5 its WebSocket frame) encoded once for all and written in
 * one synchronous loop (not paced).
 */
import { createServer } from "node:http";
import { Server, type Socket } from "socket.io";
import { childConfig } from "../lib/common.js";
import { ready, serveRounds } from "./rounds.js";
import { MESSAGE } from "./wire.js";

const { broadcast } = childConfig<{ broadcast?: boolean }>();
const text = MESSAGE.toString();
const http = createServer();
// No Engine.IO heartbeat during the rounds (gRPC's side has none either): only the round's traffic is measured.
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
  pingInterval: 600_000,
  pingTimeout: 600_000,
});
const rounds = broadcast
  ? serveRounds<Socket>(
      () => {},
      async () => {
        await io.timeout(60_000).emitWithAck("q", text);
      },
    )
  : serveRounds<Socket>((socket) => socket.emit("q", text, () => rounds.answered()));
io.on("connection", (socket) => {
  rounds.targets.add(socket);
  socket.on("disconnect", () => rounds.targets.delete(socket));
});
http.listen(0, "127.0.0.1", () => ready((http.address() as { port: number }).port));
