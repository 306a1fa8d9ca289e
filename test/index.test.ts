import { readdirSync, readFileSync } from "node:fs";
import { inspect } from "node:util";
import { expect } from "chai";
import * as admin from "../src/admin.js";
import * as root from "../src/index.js";
import { Master, Slave, silentLogger } from "../src/index.js";
import { makeTestPki } from "./certs.js";
import { cleanup, once, track } from "./helpers.js";

describe("public surface", () => {
  afterEach(cleanup);

  it("the root export holds the library, not its internals", () => {
    for (const name of ["Master", "Slave", "NetSyncError", "Code", "DEFAULTS", "silentLogger", "CustomSchema", "NetSyncService"]) {
      expect(root, name).to.have.property(name);
    }
    for (const name of [
      "Encoded",
      "DecodeFailure",
      "openBidi",
      "serviceDefinition",
      "HeartbeatScheduler",
      "Registry",
      "PingSlots",
      "Backoff",
      "AdminClient",
      "parseDuration",
    ]) {
      expect(root, name).not.to.have.property(name);
    }
    expect(admin).to.have.property("AdminClient");
    expect(admin).to.have.property("AdminService");
  });

  it("the library never imports the CLI, the demo or commander", () => {
    const srcDir = new URL("../src/", import.meta.url);
    const library = readdirSync(srcDir).filter((file) => file.endsWith(".ts"));
    expect(library).to.include("master.ts");
    let checked = 0;
    for (const file of library) {
      const imports = [...readFileSync(new URL(file, srcDir), "utf8").matchAll(/\bfrom\s+"([^"]+)"|\bimport\s*\(?\s*"([^"]+)"/g)].map(
        (m) => m[1] ?? m[2],
      );
      for (const specifier of imports) {
        expect(specifier, `${file} imports ${specifier}`).not.to.match(/(^|\/)cli\/|^commander$/);
        checked++;
      }
    }
    expect(checked, "imports read").to.be.greaterThan(50);
  });

  it("neither a master nor a slave shows its token or TLS key to the outside", async () => {
    const secret = "s3cret-token-value";
    const pki = makeTestPki();
    track(() => pki.cleanup());
    const keyText = pki.serverKey.toString("utf8").split("\n")[1]!;
    const master = new Master({
      port: 0,
      token: secret,
      tls: { cert: pki.serverCert, key: pki.serverKey },
      logger: silentLogger(),
      heartbeatInterval: 50,
      heartbeatTimeout: 200,
    });
    track(() => master.close());
    await master.listen();
    const slave = new Slave({ master: `localhost:${master.port}`, id: "w1", token: secret, tls: { ca: pki.ca }, logger: silentLogger() });
    track(() => slave.close());
    const connected = once(slave, "connected", 5_000);
    slave.start();
    await connected;

    for (const [name, object] of [
      ["master", master],
      ["slave", slave],
    ] as const) {
      expect(object, name).not.to.have.property("options");
      const own = Object.fromEntries(Object.entries(object).map(([key, value]) => [key, typeof value === "string" ? value : typeof value]));
      const shown = [JSON.stringify(own), inspect(object, { depth: 3, showHidden: true })];
      for (const text of shown) {
        expect(text, `${name}: token`).not.to.contain(secret);
        expect(text, `${name}: TLS key`).not.to.contain(keyText);
      }
    }
    // The master drops the checked token from the call's metadata, so not even its grpc-js internals hold it.
    expect(inspect(master, { depth: Infinity, showHidden: true })).not.to.contain(secret);
    // What can be read is what a user needs.
    expect(master.heartbeatInterval).to.equal(50);
    expect(master.heartbeatTimeout).to.equal(200);
    expect(slave.masters).to.deep.equal([`localhost:${master.port}`]);
  });
});
