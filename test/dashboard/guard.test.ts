// guard.ts alone: the Host check, the token and session, the CSRF check,
// each from headers only, no server.

import type { IncomingHttpHeaders } from "node:http";
import { expect } from "chai";
import { checkAction, checkHost, createAuth, hostName, isLoopback, SESSION_COOKIE } from "../../src/dashboard/guard.js";
import { HttpError } from "../../src/dashboard/http.js";

/** The HttpError `fn` throws (failing when it throws nothing or something else). */
function refusal(fn: () => unknown): HttpError {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(HttpError);
    return err as HttpError;
  }
  expect.fail("expected a refusal");
}

describe("dashboard guard", () => {
  describe("Host check", () => {
    it("knows loopback names and addresses", () => {
      for (const host of ["localhost", "127.0.0.1", "127.1.2.3", "::1"]) expect(isLoopback(host), host).to.equal(true);
      for (const host of ["0.0.0.0", "10.0.0.1", "::", "example.com", "128.0.0.1", "127.0.0.1.evil.example"]) {
        expect(isLoopback(host), host).to.equal(false);
      }
    });

    it("reads the name of a Host header, with or without port, IPv6 in brackets", () => {
      expect(hostName("localhost:8080")).to.equal("localhost");
      expect(hostName("127.0.0.1")).to.equal("127.0.0.1");
      expect(hostName("[::1]:8080")).to.equal("::1");
      expect(hostName("")).to.equal("");
    });

    it("on a loopback bind, takes loopback names and the bound host", () => {
      for (const header of ["127.0.0.1:4000", "localhost:4000", "localhost", "[::1]:4000", "127.0.0.2"]) {
        expect(() => checkHost("127.0.0.1", header), header).not.to.throw();
      }
    });

    it("on a loopback bind, refuses another name with 421 (DNS rebinding), and a missing Host", () => {
      for (const header of ["evil.example:4000", "evil.example", "10.0.0.1:4000", "[fe80::1]:4000", undefined]) {
        const err = refusal(() => checkHost("127.0.0.1", header));
        expect(err.status, String(header)).to.equal(421);
      }
      expect(refusal(() => checkHost("::1", "evil.example")).status).to.equal(421);
    });

    it("on any other bind, takes any Host", () => {
      expect(() => checkHost("0.0.0.0", "evil.example:4000")).not.to.throw();
      expect(() => checkHost("10.0.0.5", undefined)).not.to.throw();
    });
  });

  describe("CSRF check (state-changing requests)", () => {
    const good: IncomingHttpHeaders = { host: "127.0.0.1:4000", "x-netsync-action": "1", "content-type": "application/json" };

    it("takes the page's own request, with or without Origin and Sec-Fetch-Site", () => {
      expect(() => checkAction(good)).not.to.throw();
      expect(() => checkAction({ ...good, origin: "http://127.0.0.1:4000", "sec-fetch-site": "same-origin" })).not.to.throw();
      expect(() => checkAction({ ...good, "sec-fetch-site": "none" })).not.to.throw();
      expect(() => checkAction({ ...good, origin: "null" })).not.to.throw();
      expect(() => checkAction({ ...good, "content-type": "application/json; charset=utf-8" })).not.to.throw();
    });

    it("refuses a missing or wrong X-NetSync-Action header with 403", () => {
      const { "x-netsync-action": _, ...without } = good;
      expect(refusal(() => checkAction(without)).status).to.equal(403);
      expect(refusal(() => checkAction({ ...good, "x-netsync-action": "true" })).status).to.equal(403);
    });

    it("refuses a cross-site Sec-Fetch-Site, a foreign or malformed Origin with 403", () => {
      expect(refusal(() => checkAction({ ...good, "sec-fetch-site": "cross-site" })).status).to.equal(403);
      expect(refusal(() => checkAction({ ...good, "sec-fetch-site": "same-site" })).status).to.equal(403);
      expect(refusal(() => checkAction({ ...good, origin: "http://evil.example" })).status).to.equal(403);
      expect(refusal(() => checkAction({ ...good, origin: "http://127.0.0.1:4001" })).status).to.equal(403);
      expect(refusal(() => checkAction({ ...good, origin: "not a url" })).message).to.equal("bad Origin");
    });

    it("refuses a body not declared JSON with 415", () => {
      expect(refusal(() => checkAction({ ...good, "content-type": "text/plain" })).status).to.equal(415);
      const { "content-type": _, ...without } = good;
      expect(refusal(() => checkAction(without)).status).to.equal(415);
    });
  });

  describe("token and session", () => {
    it("without a token, authorizes everyone and login sets no cookie", () => {
      const auth = createAuth({});
      expect(auth.required).to.equal(false);
      expect(auth.authorized({})).to.equal(true);
      expect(() => auth.require({})).not.to.throw();
      expect(auth.login("anything")).to.equal(undefined);
    });

    it("with a token, takes it as a bearer token and refuses a missing or wrong one with 401", () => {
      const auth = createAuth({ token: "t0ken" });
      expect(auth.required).to.equal(true);
      expect(auth.authorized({ authorization: "Bearer t0ken" })).to.equal(true);
      expect(auth.authorized({ authorization: "bearer t0ken" })).to.equal(true);
      expect(auth.authorized({})).to.equal(false);
      expect(auth.authorized({ authorization: "Bearer wrong" })).to.equal(false);
      expect(auth.authorized({ authorization: "t0ken" })).to.equal(false);
      const err = refusal(() => auth.require({ authorization: "Bearer wrong" }));
      expect(err.status).to.equal(401);
      expect(err.headers["www-authenticate"]).to.match(/^Bearer /);
    });

    it("login with the right token gives an HttpOnly SameSite=Strict session cookie that is not the token, and that authorizes", () => {
      const auth = createAuth({ token: "t0ken" });
      const cookie = auth.login("t0ken")!;
      expect(cookie).to.match(new RegExp(`^${SESSION_COOKIE}=`));
      expect(cookie).to.include("HttpOnly").and.include("SameSite=Strict").and.include("Path=/");
      expect(cookie).not.to.include("t0ken");
      expect(cookie).not.to.include("Secure");
      const session = cookie.split(";")[0]!;
      expect(auth.authorized({ cookie: session })).to.equal(true);
      expect(auth.authorized({ cookie: `other=1; ${session}` })).to.equal(true);
      expect(auth.authorized({ cookie: `${SESSION_COOKIE}=forged` })).to.equal(false);
      expect(auth.authorized({ cookie: `${SESSION_COOKIE}=t0ken` })).to.equal(false);
    });

    it("login with a wrong token is 401; a session of another server does not authorize", () => {
      const auth = createAuth({ token: "t0ken" });
      expect(refusal(() => auth.login("wrong")).status).to.equal(401);
      const other = createAuth({ token: "t0ken" }).login("t0ken")!.split(";")[0]!;
      expect(auth.authorized({ cookie: other })).to.equal(false);
    });

    it("marks the cookie Secure when serving HTTPS", () => {
      expect(createAuth({ token: "t", secure: true }).login("t")).to.include("; Secure");
    });
  });
});
