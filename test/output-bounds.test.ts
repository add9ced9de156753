/** What a program's output may cost Attest: lines are gathered linearly and capped. */
import { chownSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runConfined } from "../src/runtimes/local/confine.js";
import { lookupUser } from "../src/util/os-user.js";
import { LineTail, MAX_LINE_CHARS, ProcessError, runProcess } from "../src/util/process.js";

describe("program output", () => {
  it("a line past the cap ends the program with that reason, not a hang or Attest's memory", async () => {
    const mib = MAX_LINE_CHARS / 1048576 + 6;
    const lines: string[] = [];
    const err = await runProcess("sh", ["-c", `head -c ${mib}M /dev/zero | tr '\\0' a; echo; echo after`], {
      timeoutMs: 120_000,
      onStdoutLine: (l) => lines.push(l),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessError);
    expect((err as Error).message).toMatch(/^sh printed a line longer than 64 MiB$/);
    expect(lines.every((l) => l.length <= MAX_LINE_CHARS)).toBe(true);
  });

  it("keeps every line around a too-long one, gathered from pieces", () => {
    const seen: string[] = [];
    const tail = new LineTail((l) => seen.push(l), 10);
    tail.push("first\nsecond-is-");
    tail.push("way-too-long-to-keep");
    tail.push("\nthird\nfou");
    tail.push("rth");
    tail.end();
    expect(seen).toEqual(["first", "third", "fourth"]);
    expect(tail.tooLong).toBe(true);
  });

  it("a confined reader (here as the postgres owner of a WAL archive) cannot fork past its limit", async () => {
    const archive = mkdtempSync(join(tmpdir(), "attest-reader-"));
    const pg = lookupUser("postgres")!;
    chownSync(archive, pg.uid, pg.gid);
    try {
      const r = await runConfined(
        "/bin/sh",
        ["-c", "for i in $(seq 1 200); do sleep 5 & done 2>&1 | head -1; echo done"],
        { readOnly: [archive], timeoutMs: 60_000, allowFailure: true },
      );
      expect(r.stdout).toMatch(/Resource temporarily unavailable|Cannot fork|can't fork/i);
    } finally {
      rmSync(archive, { recursive: true, force: true });
    }
  });
});
