import type { DescFile } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type * as grpc from "@grpc/grpc-js";
import { ReflectionService } from "@grpc/reflection";

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
 * to `server`, describing `files` and their imports. The descriptors come
 * from gen/ (embedded by protoc-gen-es): no .proto is read at run time and
 * there is no second copy of the schema. (grpc-health-check's own
 * descriptor, built by protobufjs, has unqualified type names that buf curl
 * rejects, hence the vendored health.proto in gen/.)
 */
export function addReflection(server: grpc.Server, files: readonly DescFile[]): void {
  // ReflectionService reads only `fileDescriptorProtos` from each entry of a proto-loader package definition.
  const definition = { files: { fileDescriptorProtos: fileDescriptorProtos(files) } } as unknown as PackageDefinition;
  new ReflectionService(definition).addToServer(server);
}
