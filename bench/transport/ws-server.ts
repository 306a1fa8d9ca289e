/** bench:transport, bare ws: one binary frame out, one back. */
import { type WebSocket, WebSocketServer } from "ws";
import { ready, serveRounds } from "./rounds.js";
import { MESSAGE } from "./wire.js";

const rounds = serveRounds<WebSocket>((ws) => ws.send(MESSAGE));
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => {
  rounds.targets.add(ws);
  ws.on("message", () => rounds.answered());
  ws.on("close", () => rounds.targets.delete(ws));
});
wss.on("listening", () => ready((wss.address() as { port: number }).port));
