/**
 * Red team: the restored server, as its superuser, writes a library (raw bytes through lo_export,
 * as a hostile backup's code would) into every place of its sandbox it can write, and tries to map
 * it as code. Every such place must be non-executable, not only the data directory: /dev/shm
 * and /dev (bubblewrap's /dev is a tmpfs without noexec), and the password files in the local
 * sandbox's top directory (which is not a noexec mount). Both runtimes.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountPointsUnder } from "../src/runtimes/noexec-mounts.js";
import type { Sandbox } from "../src/runtimes/runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import { isRoot } from "../src/util/os-user.js";
import { sandboxRuntime, selectedRuntimes } from "./support/runtimes.js";

const LIB = "/usr/lib/postgresql/15/lib/pg_trgm.so";

function suite(runtime: "local" | "docker"): void {
  describe.runIf(isRoot() && selectedRuntimes().includes(runtime))(
    `a library the restored server writes is never code (${runtime} runtime)`,
    () => {
      const work = mkdtempSync(join(tmpdir(), `attest-rt-nx-${runtime[0]}-`));
      chmodSync(work, 0o711);
      let sandbox: Sandbox;
      const sql = (text: string) =>
        withClient(sandbox, "postgres", async (c) => (await c.query(text)).rows as Record<string, unknown>[]);

      beforeAll(async () => {
        const rt = await sandboxRuntime(runtime, work);
        sandbox = await rt.provision({
          pgMajor: 15,
          allowNewer: true,
          labels: { run: `rtnx${process.pid}`, source: "t", backup: runtime },
          mode: "init",
          inputs: [],
        });
        await sql(`select pg_catalog.lo_from_bytea(4242, pg_catalog.pg_read_binary_file('${LIB}'))`);
      }, 120_000);

      afterAll(async () => {
        await sandbox?.destroy();
        expect(mountPointsUnder(work)).toEqual([]);
        rmSync(work, { recursive: true, force: true });
      });

      /** Where the server's own account can write a file, as it names the path. */
      const targets = (): string[] => {
        const common = ["/dev/shm/x.so", "/tmp/x.so", `${sandbox.dataDir}/x.so`];
        if (runtime === "docker") return [...common, "/sandbox/pgpass", "/sandbox/run/x.so"];
        const top = join(sandbox.dataDir, "..");
        return [...common, "/dev/x.so", `${top}/pgpass`, `${top}/pwfile`, `${top}/home/x.so`];
      };

      it("cannot map it from any place it can write", async () => {
        const loaded: string[] = [];
        let n = 0;
        for (const path of targets()) {
          try {
            await sql(`select pg_catalog.lo_export(4242, '${path}')`);
          } catch {
            continue; // not writable: nothing to map
          }
          try {
            await sql(
              `create function public.f${++n}(text, text) returns real language c strict as '${path}', 'similarity'`,
            );
            loaded.push(path);
          } catch (err) {
            expect(String(err)).toMatch(/failed to map segment|[Pp]ermission denied/);
          }
        }
        expect(loaded).toEqual([]);
      });

      it("still serves parallel queries (dynamic shared memory works)", async () => {
        const n = await withClient(sandbox, "postgres", async (c) => {
          await c.query("create table public.p as select g from pg_catalog.generate_series(1, 200000) g");
          for (const s of [
            "max_parallel_workers_per_gather = 2",
            "parallel_setup_cost = 0",
            "parallel_tuple_cost = 0",
            "min_parallel_table_scan_size = 0",
          ])
            await c.query(`set ${s}`);
          const plan = (await c.query("explain select pg_catalog.count(*) from public.p")).rows;
          expect(JSON.stringify(plan)).toMatch(/Gather/);
          return (await c.query("select pg_catalog.count(*)::int as n from public.p")).rows[0];
        });
        expect(n).toEqual({ n: 200000 });
      });
    },
  );
}

suite("local");
suite("docker");
