import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createAccount, createOperator, createUser, encodeAccount, encodeOperator, encodeUser, fmtCreds, type KeyPair } from "@nats-io/jwt";

/** A user of an account, as a .creds file holds it: what a test must never find in a log. */
export interface UserCreds {
  /** The .creds file (user JWT and NKey seed, in nsc's format). */
  path: string;
  jwt: string;
  seed: string;
}

/** An account: its key pair and JWT, signed by the operator that made it. */
interface Account {
  kp: KeyPair;
  jwt: string;
}

/**
 * A decentralized-auth (operator mode) setup made in the test, as `nsc`
 * would make it, but with the nats.js nkeys/jwt libraries and nothing
 * downloaded: an operator, its system account and an application account,
 * their JWTs preloaded into a MEMORY resolver, and users' .creds files, all
 * in one temporary directory that dispose() removes.
 */
export class OperatorSetup {
  readonly dir = mkdtempSync(join(tmpdir(), "netsync-operator-"));
  private users = 0;

  private constructor(
    private readonly operator: { kp: KeyPair; jwt: string },
    private readonly system: Account,
    /** The account the masters share. */
    readonly app: Account,
  ) {}

  static async create(name = "netsync-test"): Promise<OperatorSetup> {
    const okp = createOperator();
    const operatorJwt = await encodeOperator(name, okp);
    const system = await account("SYS", okp);
    const app = await account("APP", okp);
    return new OperatorSetup({ kp: okp, jwt: operatorJwt }, system, app);
  }

  /**
   * nats-server's configuration: trust this operator, SYS as its system
   * account, and resolve accounts from memory, preloaded with both JWTs
   * (no account server, no nsc push). Returns the file's path.
   */
  writeServerConfig(): string {
    const path = join(this.dir, "server.conf");
    const config = [
      `operator: ${this.operator.jwt}`,
      `system_account: ${this.system.kp.getPublicKey()}`,
      "resolver: MEMORY",
      "resolver_preload: {",
      `  ${this.system.kp.getPublicKey()}: ${this.system.jwt}`,
      `  ${this.app.kp.getPublicKey()}: ${this.app.jwt}`,
      "}",
      "",
    ].join("\n");
    writeFileSync(path, config);
    return path;
  }

  /** A new user of the application account, written as a .creds file. */
  async user(name: string): Promise<UserCreds> {
    return this.credsOf(name, this.app.kp);
  }

  /**
   * A user of an account the server does not know: another operator's
   * account, never preloaded. Its creds file is well formed; NATS refuses it.
   */
  async stranger(name: string): Promise<UserCreds> {
    const other = await account("ELSEWHERE", createOperator());
    return this.credsOf(name, other.kp);
  }

  dispose(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async credsOf(name: string, issuer: KeyPair): Promise<UserCreds> {
    const ukp = createUser();
    const jwt = await encodeUser(name, ukp, issuer);
    const path = join(this.dir, `${name}-${++this.users}.creds`);
    writeFileSync(path, fmtCreds(jwt, ukp), { mode: 0o600 });
    return { path, jwt, seed: new TextDecoder().decode(ukp.getSeed()) };
  }
}

/**
 * An account signed by `operator`, without limits: an account JWT that names
 * none gets zero connections and subscriptions from nats-server (it answers
 * "-ERR maximum account active connections exceeded", which nats.js reports
 * only as a connect timeout), as nsc's defaults of -1 avoid.
 */
async function account(name: string, operator: KeyPair): Promise<Account> {
  const kp = createAccount();
  const limits = { conn: -1, leaf: -1, subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true };
  return { kp, jwt: await encodeAccount(name, kp, { limits }, { signer: operator }) };
}
