/** Roles read from an archive's TOC, against what the pg_restore --schema-only pass they replace finds. */
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { archiveRoles } from "../src/restore/logical/archive-roles.js";
import { scanProblem } from "../src/restore/logical/guard-stream.js";
import { SqlScanner } from "../src/restore/logical/sql-scanner.js";

const DUMPS = join(import.meta.dirname, "..", "fixtures", "generated", "dumps");
const PG_RESTORE = "/usr/lib/postgresql/15/bin/pg_restore";

/** What the replaced pass found: pg_restore's SQL through the scanner. */
function rolesByPgRestore(path: string): Set<string> {
  const sql = execFileSync(PG_RESTORE, ["--schema-only", "-f", "-", path], { maxBuffer: 1 << 28 });
  const scanner = new SqlScanner();
  scanner.write(sql);
  scanner.end();
  const problem = scanProblem(scanner, path);
  if (problem) throw problem;
  return scanner.roles;
}

describe("archive roles from the TOC", () => {
  it("finds the owners and grantees pg_restore's SQL names, in custom, directory and tar archives", () => {
    for (const [name, format] of [
      ["good/app_20261120T0300.dump", "custom"],
      ["good/app_20261120T0300.dir", "directory"],
      ["good/app_20261120T0300.tar", "tar"],
      ["good/crm_20261120T0300.dump", "custom"],
      ["cutoff/app_cut50.dump", "custom"],
    ] as const) {
      const path = join(DUMPS, name);
      const roles = archiveRoles(path, format, name);
      expect(roles, name).toBeDefined();
      expect([...roles!].sort(), name).toEqual([...rolesByPgRestore(path)].sort());
      expect([...roles!].sort(), name).toEqual(["app_owner", "app_reader"]);
    }
  });

  it("refuses an archive whose SQL loads a C library from outside $libdir, as the pg_restore pass did", () => {
    const path = join(DUMPS, "hostile", "hostile_c_function.dump");
    expect(() => rolesByPgRestore(path)).toThrow(/C function loading/);
    expect(() => archiveRoles(path, "custom", "hostile_c_function.dump")).toThrow(
      /hostile_c_function\.dump \(archive TOC\) contains a C function loading \/.*outside \$libdir/,
    );
  });

  it("leaves a file it cannot read as an archive to pg_restore", () => {
    expect(archiveRoles(join(DUMPS, "damaged", "app_notadump.dump"), "custom", "x")).toBeUndefined();
    expect(archiveRoles(join(DUMPS, "no-such-file.dump"), "custom", "x")).toBeUndefined();
  });
});
