/**
 * An interrupted listing is not "no backups": a run aborted (SIGTERM, SIGINT, shutdown) before
 * its sources were listed ends `error`, evaluates no policy and alerts nobody.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runAudit } from "../src/audit/run-audit.js";
import { loadConfig } from "../src/config/load.js";
import { silentLogger } from "../src/util/log.js";
import { startWebhook, type WebhookPeer } from "./report-peers.js";
import { DUMPS, workspace } from "./support/cli.js";

const cleanup: Array<() => Promise<void> | void> = [];
afterAll(async () => {
  for (const c of cleanup.splice(0)) await c();
});

async function setup(): Promise<{ hook: WebhookPeer; dir: string; config: string }> {
  const hook = await startWebhook();
  cleanup.push(() => hook.close());
  const w = workspace(
    (dir) =>
      `sources: [{ name: src, type: dump-dir, path: ${DUMPS}/good }]\n` +
      `history: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports, pdf: false }\n` +
      `alerts: { webhook: { url: "${hook.url}" } }\n`,
  );
  cleanup.push(() => rmSync(w.dir, { recursive: true, force: true }));
  return { hook, ...w };
}

describe("a run aborted before its sources are listed", () => {
  for (const signal of ["SIGTERM", "SIGINT"]) {
    it(`ends error "aborted during listing" on ${signal}, with no violation and no alert`, async () => {
      const { hook, dir, config } = await setup();
      const controller = new AbortController();
      const run = await runAudit({
        config: loadConfig(config),
        kind: "audit",
        sources: [],
        mail: true,
        logger: silentLogger,
        signal: controller.signal,
        // the runtime exists before any source is listed: the signal lands exactly there
        onRuntime: () => controller.abort(new Error(`received ${signal}`)),
      });
      expect(run.status).toBe("error");
      expect(run.drills).toEqual([]);
      expect(run.violations).toEqual([]);
      expect(run.findings).toEqual([
        {
          source: "src",
          kind: "list_aborted",
          severity: "warning",
          message: `aborted during listing: received ${signal}`,
        },
      ]);
      expect(hook.hits).toBe(0);
      // nothing is recorded as evidence about the backups; the run document says what happened
      expect(existsSync(join(dir, "reports", "history.csv"))).toBe(false);
      const doc = JSON.parse(readFileSync(join(dir, "reports", "runs", `${run.run.id}.json`), "utf8"));
      expect(doc).toMatchObject({ status: "error", violations: [] });
    });
  }
});
