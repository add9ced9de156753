/**
 * Interrupts that are not timing-lucky (one test file per runtime, so the two run side by
 * side): the real CLI drills a good dump and, through the test-only stop point
 * (ATTEST_TEST_STOP_AT), sends itself SIGTERM or SIGINT exactly at one boundary of the
 * drill — before provisioning, before the restore, before each check, before teardown.
 * Whatever the boundary, a good backup ends `pass` or `error`, never `fail`, the stop is
 * recorded as an abort of that phase, and no sandbox is left.
 */
import { rmSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { STOP_AT_ENV } from "../../src/audit/stop-points.js";
import { CHECKS_AFTER, CHECKS_BEFORE } from "../../src/checks/registry.js";
import type { RunResult } from "../../src/model.js";
import { attest, DUMPS, workspace } from "./cli.js";
import { leftovers, sandboxYaml, selectedRuntimes } from "./runtimes.js";

/** Every boundary of a logical drill, in order, with the phase its abort names. */
const POINTS: ReadonlyArray<{ point: string; phase: string }> = [
  { point: "preflight", phase: "preflight" },
  { point: "provision", phase: "provision" },
  { point: "restore", phase: "restore" },
  { point: "checks", phase: "checks" },
  ...[...CHECKS_BEFORE.map((c) => c.name), "assertions", ...CHECKS_AFTER.map((c) => c.name)].map((name) => ({
    point: `check:${name}`,
    phase: "checks",
  })),
  { point: "teardown", phase: "teardown" },
];

/** Declares the interrupt tests for `runtime` when that runtime is selected (ATTEST_RUNTIMES). */
export function interruptSuite(runtime: string): void {
  describe.skipIf(!selectedRuntimes().includes(runtime))(
    `drills stopped at each boundary in the ${runtime} runtime`,
    () => {
      const dirs: string[] = [];
      afterAll(() => {
        for (const d of dirs) rmSync(d, { recursive: true, force: true });
      });

      const drill = async (stopAt?: string, timeout = "2h") => {
        const ws = workspace(
          (dir) =>
            `${sandboxYaml(runtime)}\nsources:\n  - name: crm\n    type: dump-dir\n    path: ${DUMPS}/good\n    include: ["crm_*"]\n    timeout: ${timeout}\n    checks:\n      queries:\n        - { name: customers exist, database: crm, sql: "select count(*) from pg_class", expect: "> 0" }\nhistory: { csv: ${dir}/reports/history.csv }\nreports: { dir: ${dir}/reports }\n`,
        );
        dirs.push(ws.dir);
        const r = await attest(["drill", "--config", ws.config, "--source", "crm", "--json", "--no-mail"], {
          env: stopAt ? { [STOP_AT_ENV]: stopAt } : {},
        });
        let doc: RunResult;
        try {
          doc = JSON.parse(r.stdout) as RunResult;
        } catch {
          throw new Error(`stdout is not one JSON document (exit ${r.code}): ${r.stderr.slice(-1500)}`);
        }
        expect(leftovers(runtime, doc.run.id), `leftovers of run ${doc.run.id}`).toEqual([]);
        return { ...r, doc };
      };

      it("the control drill, not stopped, passes (the backup is good)", async () => {
        const { code, doc, stderr } = await drill();
        expect(doc.drills[0]?.verdict, stderr.slice(-1500)).toBe("pass");
        expect(code).toBe(0);
      });

      it("Attest's own deadline, reached while the drill holds at a boundary, is error naming the phase", async () => {
        const { code, doc, stderr } = await drill("preflight:WAIT", "2s");
        expect(stderr).toContain("test stop point preflight: waiting");
        const d = doc.drills[0]!;
        expect(d.verdict).toBe("error");
        expect(d.outcome).toBe("timed-out");
        expect(d.reason).toBe("drill timed out after 2.0s during preflight");
        expect(code).toBe(3);
      });

      // SIGTERM at every boundary; SIGINT (a terminal's Ctrl-C) at one boundary of each phase
      const cases = [
        ...POINTS.map((p) => ({ ...p, sig: "SIGTERM" as const })),
        ...POINTS.filter((p) =>
          ["provision", "restore", "check:full_read", "teardown"].includes(p.point),
        ).map((p) => ({ ...p, sig: "SIGINT" as const })),
      ];
      for (const { point, phase, sig } of cases) {
        {
          const expected = phase === "teardown" ? "pass" : `error "aborted during ${phase}"`;
          it(`${sig} at ${point}: ${expected}, never fail, nothing left`, async () => {
            const { code, doc, stderr } = await drill(`${point}:${sig}`);
            // the stop point was reached: without this the test would prove nothing
            expect(stderr).toContain(`test stop point ${point}: sending ${sig}`);
            expect(doc.drills).toHaveLength(1);
            const d = doc.drills[0]!;
            expect(d.verdict, d.reason).not.toBe("fail");
            if (phase === "teardown") {
              // every check ran before the stop: the evidence stands, the sandbox still goes
              expect(d.verdict, d.reason).toBe("pass");
              // and the stop was heard there, not waited out until the stop point gave up
              expect(d.notes.join("\n")).not.toContain("stop point before teardown");
            } else {
              expect(d.verdict).toBe("error");
              expect(d.reason).toBe(`drill aborted during ${phase}: received ${sig}`);
            }
            // the run as a whole was interrupted: it could not do all it was asked (exit 3)
            expect(doc.status).toBe("error");
            expect(code).toBe(3);
          });
        }
      }
    },
  );
}
