"use strict";
// Mocha's spec reporter plus one plain closing line ("mocha: N passed, N failed, N skipped").
// CI reads that line to know tests ran; it does not recognise mocha's own "N passing" epilogue.
const { reporters } = require("mocha");

class SummaryReporter extends reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once("end", () => {
      const { passes = 0, failures = 0, pending = 0 } = this.stats;
      process.stdout.write(`mocha: ${passes} passed, ${failures} failed, ${pending} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
