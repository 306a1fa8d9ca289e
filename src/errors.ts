import { status as Status } from "@grpc/grpc-js";

/**
 * The one error type of NetSync. `code` is a gRPC status code, so an error can
 * travel to a peer as a stream status unchanged.
 */
export class NetSyncError extends Error {
  override readonly name = "NetSyncError";

  constructor(
    message: string,
    readonly code: Status = Status.UNKNOWN,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /** Wraps anything thrown into a NetSyncError, keeping an existing one as is. */
  static from(reason: unknown, code: Status = Status.UNKNOWN): NetSyncError {
    if (reason instanceof NetSyncError) return reason;
    if (reason instanceof Error) {
      const grpcCode = (reason as { code?: unknown }).code;
      return new NetSyncError(reason.message, typeof grpcCode === "number" ? grpcCode : code, { cause: reason });
    }
    return new NetSyncError(String(reason), code, { cause: reason });
  }
}
