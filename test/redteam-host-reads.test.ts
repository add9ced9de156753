/**
 * Red team: Attest reads a few small files of a backup on the host, as root (backup_label,
 * backup_manifest, PG_VERSION, a WAL archive's timeline history files, a segment's header). The
 * backup's writer chose their types — an archive_command on the production server can write a
 * link or a FIFO into the archive — so a link to a root-only host file must not put that file's
 * text into a finding, the run's JSON or history.csv, and a FIFO must not block the run for good.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, cpSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { isRoot } from "../src/util/os-user.js";
import { BASEBACKUPS, buildBasebackups } from "./physical-fixture.js";
import { attest, workspace } from "./support/cli.js";

const CANARY = "ATTESTCANARY7731 root-only text of the verifier host";

describe.runIf(isRoot())("files of a backup read on the host", () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it("are never read through a link or from a FIFO: no host text in the run's records, no hang", async () => {
    buildBasebackups();
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
policies: { rpo: 36500d }
sources:
  - name: links
    type: basebackup
    path: ${dir}/base
    wal_archive: ${dir}/wal
    wal_stall: { warning: 36500d, critical: 73000d }
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const secret = join(ws.dir, "host", "secret");
    mkdirSync(join(ws.dir, "host"), { mode: 0o700 });
    execFileSync("sh", ["-c", 'umask 077 && printf "%s\\n" "$1" > "$2"', "sh", CANARY, secret]);
    chmodSync(secret, 0o600);
    cpSync(join(BASEBACKUPS, "base", "b1-plain"), join(ws.dir, "base", "b1-plain"), { recursive: true });
    cpSync(join(BASEBACKUPS, "wal"), join(ws.dir, "wal"), { recursive: true });
    // what a hostile writer of the backup and of the archive leaves
    rmSync(join(ws.dir, "base", "b1-plain", "backup_manifest"));
    symlinkSync(secret, join(ws.dir, "base", "b1-plain", "backup_manifest"));
    symlinkSync(secret, join(ws.dir, "wal", "00000005.history"));
    execFileSync("mkfifo", [join(ws.dir, "wal", "00000006.history")]);

    const r = await attest(["audit", "--config", ws.config, "--json", "--no-mail"]);
    expect(r.stdout, r.stderr.slice(-2000)).toMatch(/^\{/);
    const doc = JSON.parse(r.stdout) as RunResult & { findings?: Array<{ message: string }> };
    const everything = [
      r.stdout,
      r.stderr,
      readFileSync(join(ws.dir, "reports", "history.csv"), "utf8"),
      ...readdirSync(join(ws.dir, "reports", "runs")).map((n) =>
        readFileSync(join(ws.dir, "reports", "runs", n), "utf8"),
      ),
    ].join("\n");
    expect(everything).not.toContain("ATTESTCANA");
    // the refusals are said, not silent
    const said = JSON.stringify(doc);
    expect(said).toMatch(/00000005\.history[^"]*symbolic link/);
    expect(said).toMatch(/00000006\.history[^"]*not a regular file/);
    expect(said).toMatch(/backup_manifest[^"]*symbolic link/);
  }, 180_000);
});
