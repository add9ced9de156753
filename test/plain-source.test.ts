/**
 * The plain-dump reader is bounded: a small .sql.gz that inflates to one 1.5 GB line ends at
 * the line limit with a reason, reading a bounded amount and holding little memory; the
 * decompressed size cap and the drill's signal stop it too.
 */
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { scanProblem } from "../src/restore/logical/guard-stream.js";
import { prescanPlain } from "../src/restore/logical/plain-source.js";
import { BackupDefectError } from "../src/util/errors.js";

const dir = mkdtempSync(join(tmpdir(), "attest-plain-source-"));
const bomb = join(dir, "bomb.sql.gz");
const MiB = 1 << 20;

beforeAll(async () => {
  const block = Buffer.alloc(MiB, 0x61);
  async function* body() {
    yield Buffer.from("--\n-- PostgreSQL database dump\n--\n\nSET client_encoding = 'UTF8';\nSELECT '");
    for (let i = 0; i < 1536; i++) yield block; // one 1.5 GiB line
    yield Buffer.from("';\n\n--\n-- PostgreSQL database dump complete\n--\n\n");
  }
  await pipeline(Readable.from(body()), createGzip({ level: 9 }), createWriteStream(bomb));
}, 120_000);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("prescanPlain bounds", () => {
  it("ends a 1.5 GB line inside a small .sql.gz at the line limit, with a reason and low memory", async () => {
    expect(statSync(bomb).size).toBeLessThan(2 * MiB);
    const rssBefore = process.memoryUsage().rss;
    const scanner = await prescanPlain(bomb, true);
    const grew = process.memoryUsage().rss - rssBefore;
    const problem = scanProblem(scanner, "bomb.sql.gz", true);
    expect(problem).toBeInstanceOf(BackupDefectError);
    expect(problem?.message).toBe(
      "dump bomb.sql.gz line 6 is longer than 256 MiB outside COPY data (the configured limit); refused, the scan stopped there",
    );
    // it stopped reading shortly after the limit, and never held the line
    expect(scanner.pos).toBeLessThan(260 * MiB);
    expect(grew).toBeLessThan(150 * MiB);
  });

  it("honours a configured line limit", async () => {
    const scanner = await prescanPlain(bomb, true, { maxLineBytes: 8 * MiB });
    expect(scanner.hazard?.message).toMatch(/^line 6 is longer than 8 MiB outside COPY data/);
    expect(scanner.pos).toBeLessThan(10 * MiB);
  });

  it("stops at the decompressed size cap", async () => {
    await expect(prescanPlain(bomb, true, { maxBytes: 4 * MiB })).rejects.toThrow(
      /decompresses to more than 4(\.0)? MiB \(the configured cap\); refused/,
    );
  });

  it("stops when the drill's signal fires", async () => {
    const ctl = new AbortController();
    ctl.abort(new Error("drill timed out"));
    await expect(prescanPlain(bomb, true, { signal: ctl.signal })).rejects.toThrow(/drill timed out|aborted/);
  });
});
