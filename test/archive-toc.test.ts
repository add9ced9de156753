/** The archive TOC reader, on real pg_dump archives and edited twins of them. */
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isPgDumpCopy, readTocCopyEntries, tocProblem } from "../src/restore/logical/archive-toc.js";

const GOOD = join(import.meta.dirname, "..", "fixtures", "generated", "dumps", "good");
const work = mkdtempSync(join(tmpdir(), "attest-toc-"));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** A copy of a real custom archive whose first copy statement is replaced (same length, so the TOC stays readable). */
function editedCopy(replacement: (original: string) => string): string {
  const src = join(GOOD, "crm_20261120T0300.dump");
  const buf = readFileSync(src);
  const original = readTocCopyEntries(src, "custom")[0]!.copyStmt;
  const at = buf.indexOf(original, 0, "latin1");
  const next = replacement(original).padEnd(original.length, " ");
  expect(next.length).toBe(original.length);
  buf.write(next, at, "latin1");
  const out = join(work, `edited-${Math.random().toString(36).slice(2)}.dump`);
  writeFileSync(out, buf);
  return out;
}

describe("archive TOC", () => {
  it("reads every data entry's copy statement of custom, directory and tar archives", () => {
    for (const [name, format] of [
      ["app_20261120T0300.dump", "custom"],
      ["app_20261120T0300.dir", "directory"],
      ["app_20261120T0300.tar", "tar"],
    ] as const) {
      const entries = readTocCopyEntries(join(GOOD, name), format);
      expect(entries.length, name).toBeGreaterThan(5);
      expect(
        entries.every((e) => e.desc === "TABLE DATA" && isPgDumpCopy(e.copyStmt)),
        name,
      ).toBe(true);
      expect(tocProblem(join(GOOD, name), format, name)).toBeUndefined();
    }
  });

  it("refuses an archive whose copy statement was edited to run a program", () => {
    const edited = editedCopy(() => "COPY public.accounts FROM PROGRAM 'id';");
    const problem = tocProblem(edited, "custom", "edited.dump");
    expect(problem?.name).toBe("BackupDefectError");
    expect(problem?.message).toMatch(
      /TABLE DATA public\.accounts.*never writes \(COPY public\.accounts FROM PROGRAM 'id';\)/,
    );
  });

  it("refuses a second statement smuggled after pg_dump's own", () => {
    const edited = editedCopy((o) => `${o.slice(0, -14)}stdin;DROP x;`);
    expect(tocProblem(edited, "custom", "e.dump")?.message).toMatch(/never writes/);
  });

  it("calls an archive that ends inside its TOC cut off", () => {
    const src = join(GOOD, "app_20261120T0300.dump");
    const cut = join(work, "cut.dump");
    copyFileSync(src, cut);
    writeFileSync(cut, readFileSync(src).subarray(0, 700));
    expect(tocProblem(cut, "custom", "cut.dump")?.message).toMatch(
      /ends inside its table of contents.*cut off/,
    );
  });

  it("accepts quoted, odd and non-ASCII identifiers the way pg_dump writes them", () => {
    expect(isPgDumpCopy('COPY "my schema"."Odd ""name""; x" ("a b", ü) FROM stdin;\n')).toBe(true);
    expect(isPgDumpCopy("COPY public.t FROM stdin;\n")).toBe(true);
    expect(isPgDumpCopy("COPY public.t (a) FROM stdin WITH (FORMAT binary);\n")).toBe(false);
    expect(isPgDumpCopy("COPY public.t (a) FROM '/etc/passwd';\n")).toBe(false);
  });
});
