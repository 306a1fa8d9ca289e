import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import {
  Health,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
  type HealthCheckResponse_ServingStatus as ServingStatus,
} from "../gen/grpc/health/v1/health_pb.js";
import { AdminClient } from "../src/admin-client.js";
import { callUnary, methodPath } from "../src/grpc-adapter.js";
import { track } from "./helpers.js";

const BUF = fileURLToPath(new URL("../node_modules/.bin/buf", import.meta.url));

/**
 * A plain insecure grpc-js client, closed by cleanup(). By default on a connection
 * of its own; pass `{}` as `channelOptions` to share the process's subchannel pool.
 */
export function grpcClient(address: string, channelOptions: grpc.ChannelOptions = { "grpc.use_local_subchannel_pool": 1 }): grpc.Client {
  const client = new grpc.Client(address, grpc.credentials.createInsecure(), channelOptions);
  track(() => client.close());
  return client;
}

/** An AdminClient, closed by cleanup(). */
export function adminClient(address: string, options: ConstructorParameters<typeof AdminClient>[1] = {}): AdminClient {
  const client = new AdminClient(address, options);
  track(() => client.close());
  return client;
}

/** grpc.health.v1.Health/Check on `client`, with a deadline `timeoutMs` from now. */
export function healthCheck(client: grpc.Client, service = "", timeoutMs = 2_000): Promise<HealthCheckResponse> {
  return callUnary(client, Health.method.check, create(HealthCheckRequestSchema, { service }), {
    deadline: Date.now() + timeoutMs,
  });
}

/** Opens Health.Watch (cancelled by cleanup()); every status the server sends is pushed to `statuses`. */
export function healthWatch(client: grpc.Client, service = "") {
  const statuses: ServingStatus[] = [];
  const call = client.makeServerStreamRequest(
    methodPath(Health.method.watch),
    (request: ReturnType<typeof create<typeof HealthCheckRequestSchema>>) => Buffer.from(toBinary(HealthCheckRequestSchema, request)),
    (bytes: Buffer) => fromBinary(HealthCheckResponseSchema, bytes),
    create(HealthCheckRequestSchema, { service }),
  );
  call.on("data", (response: HealthCheckResponse) => statuses.push(response.status));
  call.on("error", () => {});
  track(() => call.cancel());
  return { call, statuses };
}

// --- buf curl ------------------------------------------------------------------

export interface Exec {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `buf curl --protocol grpc --http2-prior-knowledge ...args`; never rejects. */
export function bufCurl(args: string[], timeoutMs = 8_000): Promise<Exec> {
  return new Promise((resolve) => {
    execFile(BUF, ["curl", "--protocol", "grpc", "--http2-prior-knowledge", ...args], { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}
