import { create, type DescMessage, type MessageInitShape, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { durationMs, timestampFromDate, timestampNow } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import {
  AdminService,
  type BroadcastRequestSchema,
  BroadcastResponseSchema,
  ClosedSlaveSchema,
  type GetJobRequestSchema,
  GetJobResponseSchema,
  type ListJobsRequestSchema,
  ListJobsResponseSchema,
  type ListMastersRequestSchema,
  ListMastersResponseSchema,
  type ListSlavesRequestSchema,
  ListSlavesResponseSchema,
  type MasterSchema,
  type SendRequestSchema,
  SendResponseSchema,
  type Slave,
  SlaveSchema,
} from "../../gen/netsync/v1/admin_pb.js";
import { Code } from "../code.js";
import { DEFAULTS } from "../defaults.js";
import { NetSyncError } from "../errors.js";
import { DecodeFailure } from "../grpc-adapter.js";
import type {
  ClosedSlaveInfo,
  ClusterStatus,
  CustomInput,
  FleetBroadcastResult,
  FleetOptions,
  FleetSlaveInfo,
  FleetView,
  MasterInfo,
  RequestOptions,
  RoutedReplyResult,
  RoutedSendResult,
} from "../model.js";
import { pageOf } from "../slave-pages.js";
import { type JobPort, JobService } from "./job-service.js";
import { closeReasonMessage, slaveMessage } from "./slave-message.js";
import { type WatchPort, WatchService } from "./watch-service.js";

type UnaryHandler<I extends DescMessage, O extends DescMessage> = (
  request: MessageShape<I>,
) => MessageInitShape<O> | Promise<MessageInitShape<O>>;

/** Adapts a typed async handler to grpc-js: bad requests and thrown NetSyncErrors become statuses. */
function unary<I extends DescMessage, O extends DescMessage>(
  output: O,
  handler: UnaryHandler<I, O>,
): grpc.handleUnaryCall<MessageShape<I> | DecodeFailure, MessageShape<O>> {
  return (call, callback) => {
    const request = call.request;
    if (request instanceof DecodeFailure) {
      callback({ code: Code.INVALID_ARGUMENT, details: `malformed request: ${request.error.message}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(request))
      .then(
        (response) => callback(null, create(output, response)),
        (err: unknown) => {
          const error = NetSyncError.from(err, Code.INTERNAL);
          callback({ code: error.code, details: error.message });
        },
      );
  };
}

function masterMessage(info: MasterInfo): MessageInitShape<typeof MasterSchema> {
  return {
    id: info.id,
    address: info.address,
    slavesHeld: info.slavesHeld,
    lastHeard: info.self ? timestampNow() : timestampFromDate(info.lastHeard),
  };
}

/**
 * What the admin service needs of a master: its fleet-wide calls (answered by
 * whichever scope it runs in) and its closed history. The Master satisfies it;
 * the service never names the class.
 */
export interface AdminPort extends WatchPort, JobPort {
  readonly maxMessageBytes: number;
  readonly clusterState: ClusterStatus;
  fleet(options: FleetOptions): Promise<FleetView>;
  broadcastFleet(custom: CustomInput, options: FleetOptions): Promise<FleetBroadcastResult>;
  routeSend(slaveId: string, custom: CustomInput): Promise<RoutedSendResult>;
  routeRequest(slaveId: string, custom: CustomInput, options: RequestOptions): Promise<RoutedReplyResult>;
  masters(): MasterInfo[];
  recentlyClosed(): ClosedSlaveInfo[];
}

/**
 * The AdminService handlers of `master`, keyed as serviceDefinition(AdminService)
 * expects (Watch served by `watch`, which the master closes; Run, GetJob and
 * ListJobs by `jobs`). ListSlaves, Broadcast, Send, ListMasters, Watch and
 * Run are cluster-wide in cluster mode (partial answers name the masters that
 * did not answer; the closed history stays local) and local otherwise.
 */
export function adminImplementation(
  master: AdminPort,
  watch: WatchService = new WatchService(master, { buffer: DEFAULTS.watchBuffer }),
  jobs: JobService = new JobService(master),
): grpc.UntypedServiceImplementation {
  return {
    [AdminService.method.watch.localName]: watch.handler,
    [AdminService.method.run.localName]: jobs.run,
    [AdminService.method.getJob.localName]: unary<typeof GetJobRequestSchema, typeof GetJobResponseSchema>(
      GetJobResponseSchema,
      (request) => jobs.getJob(request),
    ),
    [AdminService.method.listJobs.localName]: unary<typeof ListJobsRequestSchema, typeof ListJobsResponseSchema>(
      ListJobsResponseSchema,
      (request) => jobs.listJobs(request),
    ),
    [AdminService.method.listSlaves.localName]: unary<typeof ListSlavesRequestSchema, typeof ListSlavesResponseSchema>(
      ListSlavesResponseSchema,
      async (request) => {
        const view = await master.fleet({ selector: request.selector });
        const closed = request.pageToken === "" ? closedOf(request.includeClosed) : [];
        // Half the message limit for the slaves, less what the closed history takes; the rest is headroom.
        const closedBytes = closed.reduce((sum, c) => sum + toBinary(ClosedSlaveSchema, create(ClosedSlaveSchema, c)).byteLength + 6, 0);
        // Only the slaves pageOf() weighs become messages: the page and the one that did not fit, not the whole fleet.
        const messages = new Map<FleetSlaveInfo, Slave>();
        const messageOf = (slave: FleetSlaveInfo) => {
          const message = create(SlaveSchema, { ...slaveMessage(slave), masterId: slave.masterId });
          messages.set(slave, message);
          return message;
        };
        const { page, nextPageToken } = pageOf(view.slaves, {
          pageSize: request.pageSize,
          pageToken: request.pageToken,
          defaultSize: DEFAULTS.listPageSize,
          maxBytes: Math.max(0, master.maxMessageBytes / 2 - closedBytes),
          sizeOf: (slave) => toBinary(SlaveSchema, messageOf(slave)).byteLength + 6,
        });
        return {
          slaves: page.map((slave) => messages.get(slave)!),
          masters: view.masters.map(masterMessage),
          unansweredMasters: view.unanswered,
          closed,
          nextPageToken,
        };
      },
    ),
    [AdminService.method.broadcast.localName]: unary<typeof BroadcastRequestSchema, typeof BroadcastResponseSchema>(
      BroadcastResponseSchema,
      async (request) => {
        if (!request.custom) throw new NetSyncError("custom is required", Code.INVALID_ARGUMENT);
        const result = await master.broadcastFleet({ data: request.custom.data }, { selector: request.selector });
        return {
          written: result.written,
          writtenByMaster: result.byMaster,
          unansweredMasters: result.unanswered,
          pendingMasters: result.pending ?? [],
        };
      },
    ),
    [AdminService.method.send.localName]: unary<typeof SendRequestSchema, typeof SendResponseSchema>(
      SendResponseSchema,
      async (request) => {
        if (!request.slaveId) throw new NetSyncError("slave_id is required", Code.INVALID_ARGUMENT);
        if (!request.custom) throw new NetSyncError("custom is required", Code.INVALID_ARGUMENT);
        const custom = { data: request.custom.data };
        if (!request.waitReply) return master.routeSend(request.slaveId, custom);
        const timeout = request.timeout ? durationMs(request.timeout) : DEFAULTS.requestTimeout;
        const { reply, masterId } = await master.routeRequest(request.slaveId, custom, { timeout });
        return { written: true, reply, masterId };
      },
    ),
    [AdminService.method.listMasters.localName]: unary<typeof ListMastersRequestSchema, typeof ListMastersResponseSchema>(
      ListMastersResponseSchema,
      () => ({ masters: master.masters().map(masterMessage), clusterConnected: master.clusterState === "connected" }),
    ),
  };

  function closedOf(includeClosed: boolean) {
    if (!includeClosed) return [];
    return master.recentlyClosed().map((c) => ({
      slave: slaveMessage(c.slave),
      closedAt: timestampFromDate(c.closedAt),
      reason: closeReasonMessage(c.reason),
      details: c.details,
    }));
  }
}
