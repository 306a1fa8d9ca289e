/** bench:transport, Socket.IO (WebSocket only): an emit with an acknowledgement per socket. */
import { createServer } from "node:http";
import { Server, type Socket } from "socket.io";
import { ready, serveRounds } from "./rounds.js";
import { MESSAGE } from "./wire.js";

const text = MESSAGE.toString();
const rounds = serveRounds<Socket>((socket) => socket.emit("q", text, () => rounds.answered()));
const http = createServer();
// No Engine.IO heartbeat during the rounds (gRPC's side has none either): only the round's traffic is measured.
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  serveClient: false,
  pingInterval: 600_000,
  pingTimeout: 600_000,
});
io.on("connection", (socket) => {
  rounds.targets.add(socket);
  socket.on("disconnect", () => rounds.targets.delete(socket));
});
http.listen(0, "127.0.0.1", () => ready((http.address() as { port: number }).port));
