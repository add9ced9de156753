/** The checksum checks on a real physical restore: clean pages pass, a damaged page fails. */
import { closeSync, openSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CheckContext } from "../src/checks/check.js";
import { checksumFailuresCheck, pgChecksumsCheck } from "../src/checks/checksums.js";
import { checksSchema } from "../src/config/common-schema.js";
import type { DrillPlan } from "../src/model.js";
import type { RestoreOutcome } from "../src/restore/restorer.js";
import type { Sandbox } from "../src/runtimes/runtime.js";
import { withClient } from "../src/runtimes/sql.js";
import { silentLogger } from "../src/util/log.js";
import { buildBasebackups, drill, leftovers, listFixture, sourceConfig } from "./physical-fixture.js";

beforeAll(() => {
  buildBasebackups();
});
afterAll(() => {
  expect(leftovers()).toEqual({ dirs: [], processes: [] });
});

function context(sandbox: Sandbox, plan: DrillPlan, restored: RestoreOutcome): CheckContext {
  return {
    sandbox,
    plan,
    restored,
    config: checksSchema.parse({}),
    shared: {},
    drillStartedAt: new Date(),
    logger: silentLogger,
    timeoutMs: 120_000,
  };
}

describe("checksum checks after a physical restore", () => {
  it("pass on clean pages, fail on a damaged one, and leave the server running", async () => {
    const cfg = sourceConfig("base", "wal");
    const { backups } = await listFixture(cfg);
    const plan: DrillPlan = { backup: backups.at(-1)!, target: { kind: "latest" }, reason: "latest" };
    const r = await drill(cfg, plan, async (sandbox, outcome) => {
      const ctx = context(sandbox, plan, outcome);
      expect(checksumFailuresCheck.enabled(ctx)).toBe(true);
      expect(pgChecksumsCheck.enabled(ctx)).toBe(true);
      expect(
        checksumFailuresCheck.enabled({
          ...ctx,
          plan: { ...plan, backup: { ...plan.backup, family: "logical" } },
        }),
      ).toBe(false);

      const clean = await pgChecksumsCheck.run(ctx);
      expect(clean.status, clean.detail).toBe("pass");
      expect(clean.detail).toMatch(/every page checksum is correct \(\d+ files, \d+ blocks\)/);
      expect((await checksumFailuresCheck.run(ctx)).status).toBe("pass");

      // damage one page of pgbench_accounts behind the server's back
      const file = await withClient(
        sandbox,
        "postgres",
        async (c) =>
          (await c.query<{ f: string }>("select pg_relation_filepath('public.pgbench_accounts') as f"))
            .rows[0]!.f,
      );
      await sandbox.stop({ timeoutMs: 30_000 });
      const fd = openSync(join(sandbox.dataDir, file), "r+");
      writeSync(fd, Buffer.from("attest damage attest damage"), 0, 27, 8192 * 3 + 500);
      closeSync(fd);
      await sandbox.start({ timeoutMs: 60_000 });

      const damaged = await pgChecksumsCheck.run(ctx);
      expect(damaged.status).toBe("fail");
      expect(damaged.detail).toMatch(
        /^1 page with a bad checksum: .*checksum verification failed in file ".*", block 3/,
      );
      expect(await sandbox.isRunning()).toBe(true);

      // reading the damaged page makes the server count a checksum failure
      await withClient(sandbox, "postgres", async (c) => {
        await c.query("select count(*) from public.pgbench_accounts").catch(() => undefined);
      });
      const counted = await checksumFailuresCheck.run(ctx);
      expect(counted.status).toBe("fail");
      expect(counted.detail).toMatch(/data checksum failures: postgres: 1/);
    });
    expect(r.error?.message).toBeUndefined();
  });
});
