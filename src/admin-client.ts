import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as grpc from "@grpc/grpc-js";
import {
  AdminService,
  BroadcastRequestSchema,
  type BroadcastResponse,
  ListMastersRequestSchema,
  type ListMastersResponse,
  ListSlavesRequestSchema,
  type ListSlavesResponse,
  SendRequestSchema,
  type SendResponse,
} from "../gen/netsync/v1/admin_pb.js";
import { type ClientTlsOptions, clientCredentials, tokenMetadata } from "./auth.js";
import { Code, codeName, isCode } from "./code.js";
import { NetSyncError } from "./errors.js";
import { callUnary } from "./grpc-adapter.js";

/** How long an admin call may take before it fails with DEADLINE_EXCEEDED, beyond any reply wait. */
const CALL_DEADLINE_MS = 5_000;

/** Options of {@link AdminClient}. */
export interface AdminClientOptions {
  /** Connect with TLS (and a client certificate for mTLS). Default plaintext. */
  tls?: ClientTlsOptions;
  /** Bearer token sent as `authorization`. Default none. */
  token?: string;
}

/** A typed client of a master's AdminService, for the CLI and for scripts. */
export class AdminClient {
  private readonly client: grpc.Client;
  private readonly metadata: grpc.Metadata;

  constructor(master: string, options: AdminClientOptions = {}) {
    this.client = new grpc.Client(master, clientCredentials(options.tls));
    this.metadata = tokenMetadata(options.token);
  }

  /** Connected slaves (those a selector matches), with the recently closed ones if asked. */
  listSlaves(options: { includeClosed?: boolean; selector?: string } = {}): Promise<ListSlavesResponse> {
    const request = create(ListSlavesRequestSchema, { includeClosed: options.includeClosed ?? false, selector: options.selector ?? "" });
    return this.call(() => callUnary(this.client, AdminService.method.listSlaves, request, this.deadline(), this.metadata));
  }

  /** Writes a Custom to every slave, or to those a selector matches; resolves with how many it reached. */
  async broadcast(data: string, options: { selector?: string } = {}): Promise<number> {
    return (await this.broadcastDetails(data, options)).written;
  }

  /** Like broadcast(), with the whole response: the count on each master and, in a cluster, the masters that did not answer. */
  broadcastDetails(data: string, options: { selector?: string } = {}): Promise<BroadcastResponse> {
    const request = create(BroadcastRequestSchema, { custom: { data }, selector: options.selector ?? "" });
    return this.call(() => callUnary(this.client, AdminService.method.broadcast, request, this.deadline(), this.metadata));
  }

  /** The masters of the answering master's cluster. */
  listMasters(): Promise<ListMastersResponse> {
    const request = create(ListMastersRequestSchema, {});
    return this.call(() => callUnary(this.client, AdminService.method.listMasters, request, this.deadline(), this.metadata));
  }

  send(slaveId: string, data: string, wait?: { timeout: number }): Promise<SendResponse> {
    const request = create(SendRequestSchema, {
      slaveId,
      custom: { data },
      waitReply: wait !== undefined,
      timeout: wait ? durationFromMs(wait.timeout) : undefined,
    });
    return this.call(() => callUnary(this.client, AdminService.method.send, request, this.deadline(wait?.timeout ?? 0), this.metadata));
  }

  close(): void {
    this.client.close();
  }

  private deadline(extraMs = 0): grpc.CallOptions {
    return { deadline: Date.now() + CALL_DEADLINE_MS + extraMs };
  }

  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as grpc.ServiceError;
      throw new NetSyncError(`${codeName(e.code)}: ${e.details || e.message}`, isCode(e.code) ? e.code : Code.UNKNOWN, { cause: err });
    }
  }
}
