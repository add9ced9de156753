/**
 * `pg_dump -Fc | gzip` files on disk, drilled by the real CLI in every runtime: gzip runs inside
 * the sandbox (the container too), the archive it writes is taken out of the sandbox's reach and
 * restored as any custom archive; a stream cut short fails naming gzip's complaint.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { DUMPS } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

const CRM_GZ = gzipSync(readFileSync(join(DUMPS, "good", "crm_20261120T0300.dump")));

describe.each(selectedRuntimes())("pg_dump -Fc | gzip on disk in the %s runtime", (runtime) => {
  const { config, run } = drillSuite(runtime);

  it("passes the whole stream and fails its cut twin", async () => {
    const ws = config(`sources:
  - { name: gz, type: dump-dir, path: gz, select: all }`);
    mkdirSync(join(ws.dir, "gz"));
    writeFileSync(join(ws.dir, "gz", "crm_20261120T0300.dump.gz"), CRM_GZ, { mode: 0o644 });
    // the same stream, cut short a third of the way in (an upload or a copy that broke off)
    writeFileSync(
      join(ws.dir, "gz", "crm_20261121T0300.dump.gz"),
      CRM_GZ.subarray(0, Math.floor(CRM_GZ.length / 3)),
      { mode: 0o644 },
    );
    const { code, doc, stderr } = await run(["audit", "--config", ws.config]);
    expect(code, stderr.slice(-2000)).toBe(1);
    const by = new Map(doc.drills.map((d) => [d.backup.id, d]));
    expect([...by.keys()].sort()).toEqual(["crm_20261120T0300.dump.gz", "crm_20261121T0300.dump.gz"]);
    const good = by.get("crm_20261120T0300.dump.gz")!;
    expect(good.backup.format).toBe("custom-gzip");
    expect(good.verdict, good.reason).toBe("pass");
    expect(good.notes?.join("\n")).toMatch(/decompressed by gzip inside the sandbox/);
    const cut = by.get("crm_20261121T0300.dump.gz")!;
    expect(cut.verdict, cut.reason).toBe("fail");
    expect(cut.reason).toMatch(/the gzip stream is cut off or damaged \(gzip: .*unexpected end of file/);
  });
});
