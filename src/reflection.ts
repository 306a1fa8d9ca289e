import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";
import { service as healthService } from "grpc-health-check";
import { toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

type PackageDefinition = ConstructorParameters<typeof ReflectionService>[0];

/** Serialized FileDescriptorProtos of `files` and everything they import, each once. */
export function fileDescriptorProtos(files: readonly DescFile[]): Buffer[] {
  const seen = new Set<string>();
  const out: Buffer[] = [];
  const visit = (file: DescFile) => {
    if (seen.has(file.name)) return;
    seen.add(file.name);
    file.dependencies.forEach(visit);
    out.push(Buffer.from(toBinary(FileDescriptorProtoSchema, file.proto)));
  };
  files.forEach(visit);
  return out;
}

/**
 * Adds server reflection (grpc.reflection.v1 and v1alpha, for older grpcurl)
 * to `server`, describing our generated files plus the health service. The
 * descriptors come from gen/ (embedded by protoc-gen-es): no .proto is read
 * and there is no second copy of the schema.
 */
export function addReflection(server: grpc.Server, files: readonly DescFile[]): void {
  const healthRequest = healthService.Check!.requestType as unknown as { fileDescriptorProtos: Buffer[] };
  const definition = {
    "netsync.v1": { fileDescriptorProtos: fileDescriptorProtos(files) },
    "grpc.health.v1": { fileDescriptorProtos: healthRequest.fileDescriptorProtos },
  } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}
