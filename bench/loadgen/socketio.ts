/** Load generator for Socket.IO: one socket.io-client per slave, WebSocket only, no reconnection. */
import { io } from "socket.io-client";
import { hrNow } from "../lib/common.js";
import { config, ended, hostFor, run, state } from "./core.js";

function open(index: number): Promise<void> {
  const socket = io(`http://${hostFor(index)}:${config.port}`, {
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    auth: { id: `${config.prefix}${index}` },
  });
  // engine.io-client has already queued the pong when the manager emits "ping".
  socket.io.on("ping", () => {
    state.pings++;
    if (state.probing) socket.emit("echo", `e:${hrNow()}`);
  });
  socket.on("echo", (data: string) => state.rtt.push(hrNow() - Number(data.slice(2))));
  socket.on("cmd", (data: string) => state.bcast.push(hrNow() - Number(data.slice(2))));
  return new Promise<void>((resolve, reject) => {
    socket.once("connect", () => {
      socket.on("disconnect", (reason) => ended(reason));
      resolve();
    });
    socket.once("connect_error", reject);
  });
}

await run(open);
