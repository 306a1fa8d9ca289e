import type { ServerHttp2Stream } from "node:http2";
import { type DescMessage, type DescMethod, type DescService, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";

/**
 * A message already serialized. Writing one to a stream skips serialization,
 * which lets the heartbeat encode a Ping once per round for every slave.
 */
export class Encoded {
  constructor(readonly bytes: Buffer) {}

  static of<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): Encoded {
    return new Encoded(asBuffer(toBinary(schema, message)));
  }

  get byteLength(): number {
    return this.bytes.byteLength;
  }
}

/**
 * What a server handler receives instead of a message that failed to decode,
 * so the handler can end the stream with INVALID_ARGUMENT and a reason
 * (grpc-js would answer INTERNAL with no details if the deserializer threw).
 */
export class DecodeFailure {
  constructor(readonly error: Error) {}
}

/** A bidi method of a generated service, typed by its input and output. */
export type BidiMethod<I extends DescMessage, O extends DescMessage> = DescMethod & {
  methodKind: "bidi_streaming";
  input: I;
  output: O;
};

/** The server-side call of a bidi method, as a handler sees it. */
export type ServerBidiCall<I extends DescMessage, O extends DescMessage> = grpc.ServerDuplexStream<
  MessageShape<I> | DecodeFailure,
  MessageShape<O> | Encoded
>;

/** The client-side call of a bidi method. */
export type ClientBidiCall<I extends DescMessage, O extends DescMessage> = grpc.ClientDuplexStream<
  MessageShape<I> | Encoded,
  MessageShape<O>
>;

/**
 * Ends a server-streaming or bidi call with a status. grpc-js has no method
 * for it: it turns an error emitted on a server stream into the call's status
 * (ServerDuplexStreamImpl / ServerWritableStreamImpl), which is the one place
 * NetSync relies on that; every refusal and every end goes through here.
 * `trailers` go out with the status (grpc-js reads them from the error's
 * `metadata`), e.g. a refusal's retry hint.
 */
export function rejectCall(
  call: grpc.ServerDuplexStream<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>,
  code: grpc.status,
  details: string,
  trailers?: grpc.Metadata,
): void {
  call.emit("error", Object.assign(new Error(details), { code, details }, trailers ? { metadata: trailers } : {}));
}

/**
 * The HTTP/2 stream under a grpc-js server call, to reset it when its peer
 * stopped reading (a status never flushes to a frozen peer; only RST_STREAM
 * frees the stream). grpc-js does not expose it, so this walks its private
 * call chain (interceptors' `nextCall`, then the base call's `stream`) and
 * returns undefined if those internals change. That would silently keep
 * unread streams open until the connection's idle timeout, so
 * test/grpc-adapter.test.ts checks it on a real call and fails loudly when
 * grpc-js changes shape. The only reach into grpc-js's privates in NetSync.
 */
export function http2StreamOf(call: grpc.ServerDuplexStream<unknown, unknown>): ServerHttp2Stream | undefined {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 16 && typeof link === "object" && link !== null; depth++) {
    const stream = (link as { stream?: unknown }).stream;
    if (typeof stream === "object" && stream !== null && typeof (stream as ServerHttp2Stream).close === "function") {
      return stream as ServerHttp2Stream;
    }
    link = (link as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

function serializer(schema: DescMessage): (value: MessageShape<DescMessage> | Encoded) => Buffer {
  return (value) => (value instanceof Encoded ? value.bytes : asBuffer(toBinary(schema, value)));
}

function lenientDeserializer(schema: DescMessage): (bytes: Buffer) => MessageShape<DescMessage> | DecodeFailure {
  return (bytes) => {
    try {
      return fromBinary(schema, bytes);
    } catch (e) {
      return new DecodeFailure(e instanceof Error ? e : new Error(String(e)));
    }
  };
}

/**
 * Turns a protobuf-es service into a grpc-js ServiceDefinition keyed by each
 * method's localName, so the generated descriptors are the only schema.
 */
export function serviceDefinition(service: DescService): grpc.ServiceDefinition {
  const definition: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const method of service.methods) {
    definition[method.localName] = {
      path: methodPath(method),
      originalName: method.name,
      requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
      responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
      requestSerialize: serializer(method.input),
      requestDeserialize: lenientDeserializer(method.input),
      responseSerialize: serializer(method.output),
      responseDeserialize: (bytes: Buffer) => fromBinary(method.output, bytes),
    } as grpc.MethodDefinition<unknown, unknown>;
  }
  return definition;
}

/** Opens a bidi stream of `method` on a plain grpc-js client. */
export function openBidi<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: BidiMethod<I, O>,
  metadata: grpc.Metadata,
  options: grpc.CallOptions = {},
): ClientBidiCall<I, O> {
  return client.makeBidiStreamRequest(
    methodPath(method),
    serializer(method.input) as (value: MessageShape<I> | Encoded) => Buffer,
    (bytes: Buffer) => fromBinary(method.output, bytes),
    metadata,
    options,
  );
}

/** A unary method of a generated service, typed by its input and output. */
export type UnaryMethod<I extends DescMessage, O extends DescMessage> = DescMethod & {
  methodKind: "unary";
  input: I;
  output: O;
};

/** Calls a unary method on a plain grpc-js client; rejects with the grpc-js ServiceError. */
export function callUnary<I extends DescMessage, O extends DescMessage>(
  client: grpc.Client,
  method: UnaryMethod<I, O>,
  request: MessageShape<I>,
  options: grpc.CallOptions = {},
  metadata: grpc.Metadata = new grpc.Metadata(),
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(
      methodPath(method),
      serializer(method.input) as (value: MessageShape<I>) => Buffer,
      (bytes: Buffer) => fromBinary(method.output, bytes),
      request,
      metadata,
      options,
      (err, response) => (err || response === undefined ? reject(err) : resolve(response)),
    );
  });
}
