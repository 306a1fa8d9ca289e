import * as grpc from "@grpc/grpc-js";
import { expect } from "chai";
import { isCode } from "../src/code.js";
import { Code, codeName, NetSyncError } from "../src/index.js";

describe("Code and NetSyncError", () => {
  it("Code has gRPC's names and numbers, every one of them", () => {
    const grpcCodes = Object.entries(grpc.status).filter(([, value]) => typeof value === "number");
    expect(Object.entries(Code)).to.have.deep.members(grpcCodes);
    expect(codeName(Code.NOT_FOUND)).to.equal("NOT_FOUND");
    expect(codeName(99)).to.equal("99");
    expect(isCode(16)).to.equal(true);
    expect(isCode(17)).to.equal(false);
    expect(isCode("5")).to.equal(false);
  });

  it("a NetSyncError carries its code (UNKNOWN by default) and its cause", () => {
    const cause = new Error("root");
    const err = new NetSyncError("gone", Code.UNAVAILABLE, { cause });
    expect(err).to.be.instanceOf(Error);
    expect(err.name).to.equal("NetSyncError");
    expect(err.code).to.equal(14);
    expect(err.cause).to.equal(cause);
    expect(new NetSyncError("?").code).to.equal(Code.UNKNOWN);
  });

  it("from() keeps a NetSyncError, takes a gRPC error's code, and wraps anything else with the given code", () => {
    const own = new NetSyncError("mine", Code.NOT_FOUND);
    expect(NetSyncError.from(own, Code.INTERNAL)).to.equal(own);

    const serviceError = Object.assign(new Error("14 UNAVAILABLE: down"), { code: grpc.status.UNAVAILABLE, details: "down" });
    const wrapped = NetSyncError.from(serviceError, Code.INTERNAL);
    expect(wrapped.code).to.equal(Code.UNAVAILABLE);
    expect(wrapped.cause).to.equal(serviceError);

    // A Node errno code is a string, not a status: the fallback code applies.
    const errno = Object.assign(new Error("connect ECONNREFUSED"), { code: "ECONNREFUSED" });
    expect(NetSyncError.from(errno, Code.UNAVAILABLE).code).to.equal(Code.UNAVAILABLE);
    expect(NetSyncError.from(Object.assign(new Error("odd"), { code: 42 })).code).to.equal(Code.UNKNOWN);

    const text = NetSyncError.from("plain text", Code.ABORTED);
    expect(text.message).to.equal("plain text");
    expect(text.code).to.equal(Code.ABORTED);
  });
});
