import { expect } from "chai";
import fc from "fast-check";
import { formatDuration, parseDuration } from "../../src/cli/duration.js";

describe("cli duration", () => {
  describe("parseDuration", () => {
    for (const [text, ms] of [
      ["250ms", 250],
      ["5s", 5_000],
      ["1.5m", 90_000],
      ["1h", 3_600_000],
    ] as const) {
      it(`reads "${text}" as ${ms} ms`, () => {
        expect(parseDuration(text)).to.equal(ms);
      });
    }

    for (const [text, message] of [
      ["", /not a duration/],
      ["5", /not a duration/],
      ["-1s", /not a duration/],
      ["1d", /not a duration/],
      ["0s", /must be greater than zero/],
    ] as const) {
      it(`rejects "${text}" with a RangeError`, () => {
        expect(() => parseDuration(text))
          .to.throw(RangeError)
          .with.property("message")
          .that.matches(message);
      });
    }
  });

  describe("formatDuration", () => {
    it("uses the largest unit that divides the value: ms, s or m", () => {
      expect(formatDuration(250)).to.equal("250ms");
      expect(formatDuration(1_500)).to.equal("1500ms");
      expect(formatDuration(5_000)).to.equal("5s");
      expect(formatDuration(90_000)).to.equal("90s");
      expect(formatDuration(60_000)).to.equal("1m");
      expect(formatDuration(3_600_000)).to.equal("60m");
    });

    it("round-trips: parseDuration(formatDuration(ms)) === ms for every positive integer", () => {
      for (const ms of [1, 250, 999, 1_000, 1_500, 60_000, 90_000, 3_600_000]) {
        expect(parseDuration(formatDuration(ms)), formatDuration(ms)).to.equal(ms);
      }
      fc.assert(fc.property(fc.integer({ min: 1, max: 2 ** 40 }), (ms) => parseDuration(formatDuration(ms)) === ms));
    });
  });
});
