import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM material made at run time with the machine's openssl; no private key is committed. */
export interface TestPki {
  dir: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  /** Signed by `ca`; CN and DNS SAN "slave-cert". */
  clientCert: Buffer;
  clientKey: Buffer;
  /** Signed by a CA the master does not trust; CN "intruder". */
  strangerCert: Buffer;
  strangerKey: Buffer;
  paths: Record<"ca" | "serverCert" | "serverKey" | "clientCert" | "clientKey", string>;
  cleanup(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

function makeCa(dir: string, name: string): void {
  openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-days",
    "1",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
  );
}

function makeLeaf(dir: string, ca: string, name: string, cn: string, san: string, usage: string): void {
  openssl(
    dir,
    "req",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  );
  writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${usage}\n`);
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  );
}

export function makeTestPki(): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "netsync-pki-"));
  makeCa(dir, "ca");
  makeCa(dir, "stranger-ca");
  makeLeaf(dir, "ca", "server", "localhost", "IP:127.0.0.1,DNS:localhost", "serverAuth");
  makeLeaf(dir, "ca", "client", "slave-cert", "DNS:slave-cert", "clientAuth");
  makeLeaf(dir, "stranger-ca", "stranger", "intruder", "DNS:intruder", "clientAuth");
  const read = (file: string) => readFileSync(join(dir, file));
  return {
    dir,
    ca: read("ca.crt"),
    serverCert: read("server.crt"),
    serverKey: read("server.key"),
    clientCert: read("client.crt"),
    clientKey: read("client.key"),
    strangerCert: read("stranger.crt"),
    strangerKey: read("stranger.key"),
    paths: {
      ca: join(dir, "ca.crt"),
      serverCert: join(dir, "server.crt"),
      serverKey: join(dir, "server.key"),
      clientCert: join(dir, "client.crt"),
      clientKey: join(dir, "client.key"),
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
