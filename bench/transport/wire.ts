/** What bench:transport's servers send and its clients answer, and the raw-bytes gRPC method both gRPC sides use. */
import type * as grpc from "@grpc/grpc-js";

/** A round's message: 16 bytes, about a small Custom's size. */
export const MESSAGE = Buffer.from("0123456789abcdef");
/** A client's answer: one byte (an empty message only opens a gRPC stream). */
export const ANSWER = Buffer.from("r");

const bytes = (buffer: Buffer): Buffer => buffer;
export const BYTES_METHOD: grpc.MethodDefinition<Buffer, Buffer> = {
  path: "/bench.Transport/Sync",
  requestStream: true,
  responseStream: true,
  requestSerialize: bytes,
  requestDeserialize: bytes,
  responseSerialize: bytes,
  responseDeserialize: bytes,
};
