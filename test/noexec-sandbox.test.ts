/**
 * A library inside a sandbox's data directory cannot be loaded as code (the sandbox directories
 * are mounted noexec when Attest runs as root, and a container's binds of them inherit it),
 * while the system's extensions still load. Both runtimes; no mount is left behind.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountPointsUnder } from "../src/runtimes/noexec-mounts.js";
import type { Sandbox } from "../src/runtimes/runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import { isRoot } from "../src/util/os-user.js";
import { sandboxRuntime, selectedRuntimes } from "./support/runtimes.js";

const LIB = "/usr/lib/postgresql/15/lib/pg_trgm.so";

/** The same two facts, for a sandbox of `runtime` whose work directory is its own. */
function noexecSuite(runtime: "local" | "docker"): void {
  describe.runIf(isRoot() && selectedRuntimes().includes(runtime))(
    `noexec sandbox directory (${runtime} runtime)`,
    () => {
      const work = mkdtempSync(join(tmpdir(), `attest-nx-${runtime[0]}-`));
      chmodSync(work, 0o711);
      // a backup directory that ships a library beside its files (read where it lies)
      const backup = join(work, "backup");
      mkdirSync(backup, { mode: 0o755 });
      copyFileSync(LIB, join(backup, "evil.so"));
      chmodSync(join(backup, "evil.so"), 0o755);
      let sandbox: Sandbox;
      const sql = (text: string) =>
        withClient(sandbox, "postgres", async (c) => (await c.query(text)).rows as unknown[]);

      beforeAll(async () => {
        const rt = await sandboxRuntime(runtime, work);
        sandbox = await rt.provision({
          pgMajor: 15,
          allowNewer: true,
          labels: { run: `noexec${process.pid}`, source: "t", backup: runtime },
          mode: "init",
          inputs: [{ hostPath: backup }],
        });
      }, 120_000);

      afterAll(async () => {
        await sandbox?.destroy();
        // the noexec binds went with the sandbox, and so did its directory
        expect(mountPointsUnder(work)).toEqual([]);
        if (runtime === "local") expect(existsSync(join(sandbox.dataDir, ".."))).toBe(false);
        rmSync(work, { recursive: true, force: true });
      });

      it("refuses to map a library copied into the data directory", async () => {
        expect(mountPointsUnder(work).length).toBeGreaterThan(0);
        const so = `${sandbox.dataDir}/x.so`;
        if (runtime === "local") {
          copyFileSync(LIB, so);
          chmodSync(so, 0o755);
        } else {
          // written inside the container, by its own user, as a hostile backup would
          const r = await sandbox.exec("sh", ["-c", `cp ${LIB} ${so} && chmod 755 ${so}`], {
            timeoutMs: 30_000,
            allowFailure: true,
          });
          expect(r.code, r.stderrTail).toBe(0);
        }
        await expect(
          sql(`create function public.x(text, text) returns real language c strict as '${so}', 'similarity'`),
        ).rejects.toThrow(/failed to map segment|[Pp]ermission denied/);
      });

      it("refuses to map a library shipped beside the backup, where the sandbox reads it", async () => {
        const so = sandbox.inputPath(join(backup, "evil.so"));
        await expect(
          sql(`create function public.y(text, text) returns real language c strict as '${so}', 'similarity'`),
        ).rejects.toThrow(/failed to map segment|[Pp]ermission denied/);
        // the sandbox says nothing of noexec missing: it is in place
        expect((sandbox.notes ?? []).join("\n")).not.toMatch(/noexec|non-executable/);
      });

      it("still loads a system extension", async () => {
        await sql("create extension pg_trgm schema public");
        expect(
          await sql("select public.similarity('abc'::pg_catalog.text, 'abd'::pg_catalog.text) > 0 as ok"),
        ).toEqual([{ ok: true }]);
      });
    },
  );
}

noexecSuite("local");
noexecSuite("docker");
