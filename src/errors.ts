import { Code, isCode } from "./code.js";

/**
 * The one error type of NetSync. `code` is a {@link Code}, numbered as gRPC's
 * status codes, so an error can travel to a peer as a stream status unchanged.
 */
export class NetSyncError extends Error {
  override readonly name = "NetSyncError";

  constructor(
    message: string,
    readonly code: Code = Code.UNKNOWN,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  /**
   * Wraps anything thrown into a NetSyncError, keeping an existing one as is
   * and the status code of a gRPC error (a grpc-js ServiceError carries one).
   */
  static from(reason: unknown, code: Code = Code.UNKNOWN): NetSyncError {
    if (reason instanceof NetSyncError) return reason;
    if (reason instanceof Error) {
      const own = (reason as { code?: unknown }).code;
      return new NetSyncError(reason.message, isCode(own) ? own : code, { cause: reason });
    }
    return new NetSyncError(String(reason), code, { cause: reason });
  }
}
