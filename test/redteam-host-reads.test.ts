/**
 * Red team: Attest reads a few small files of a backup on the host, as root (backup_label,
 * backup_manifest, PG_VERSION, a WAL archive's timeline history files, a segment's header). The
 * backup's writer chose their types — an archive_command on the production server can write a
 * link or a FIFO into the archive — so a link to a root-only host file must not put that file's
 * text into a finding, the run's JSON or history.csv, and a FIFO must not block the run for good.
 * The same for a dump: a FIFO in a directory-format dump blocked the preflight's synchronous read
 * (sandbox.timeout and SIGTERM were never heard).
 */
import { execFileSync } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { RunResult } from "../src/model.js";
import { handOverSocketDir } from "../src/runtimes/socket-dir.js";
import { findDataDir } from "../src/sources/oci-volume-backups/host-mount.js";
import { BackupDefectError, VerifierError } from "../src/util/errors.js";
import { isRoot } from "../src/util/os-user.js";
import { BASEBACKUPS, buildBasebackups } from "./physical-fixture.js";
import { attest, DUMPS, workspace } from "./support/cli.js";

const CANARY = "ATTESTCANARY7731 root-only text of the verifier host";

describe.runIf(isRoot())("files of a backup read on the host", () => {
  const dirs: string[] = [];
  const pids: number[] = [];
  afterAll(() => {
    // a run that hung on a FIFO is ended here, not left behind
    for (const pid of pids)
      try {
        process.kill(pid, "SIGKILL");
      } catch {}
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** A workspace with one basebackup source over `<dir>/<sub>` and the WAL archive `wal(dir)`. */
  const basebackupWorkspace = (name: string, wal: (dir: string) => string, sub = "base", more = "") => {
    const ws = workspace(
      (dir) => `sandbox: { runtime: local }
policies: { rpo: 36500d }
sources:
  - name: ${name}
    type: basebackup
    path: ${dir}/${sub}
    wal_archive: ${wal(dir)}${more}
    wal_stall: { warning: 36500d, critical: 73000d }
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    return ws;
  };

  /** One `attest audit --json` of `config`, ended in afterAll should it hang. */
  const audit = async (config: string) => {
    const r = await attest(["audit", "--config", config, "--json", "--no-mail"], {
      onSpawn: (pid) => pids.push(pid),
    });
    expect(r.stdout, r.stderr.slice(-2000)).toMatch(/^\{/);
    return { r, doc: JSON.parse(r.stdout) as RunResult & { findings?: Array<{ message: string }> } };
  };

  it("are never read through a link or from a FIFO: no host text in the run's records, no hang", async () => {
    buildBasebackups();
    const ws = basebackupWorkspace("links", (dir) => `${dir}/wal`);
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

    const { r, doc } = await audit(ws.config);
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

  it("a tar base backup's pg_wal.tar linked to a host tar is not streamed into the sandbox", async () => {
    buildBasebackups();
    const ws = basebackupWorkspace("walink", () => `${BASEBACKUPS}/wal`);
    // a root-only tar of the verifier host's: read as root, it would land in the sandbox's pg_wal
    const host = join(ws.dir, "host");
    mkdirSync(host, { mode: 0o700 });
    writeFileSync(join(host, "000000010000000000000099"), `${CANARY}\n`, { mode: 0o600 });
    execFileSync("tar", ["-cf", join(host, "wal.tar"), "-C", host, "000000010000000000000099"]);
    chmodSync(join(host, "wal.tar"), 0o600);
    cpSync(join(BASEBACKUPS, "base", "b2-tar-gz"), join(ws.dir, "base", "b2-tar-gz"), { recursive: true });
    symlinkSync(join(host, "wal.tar"), join(ws.dir, "base", "b2-tar-gz", "pg_wal.tar"));

    const { r, doc } = await audit(ws.config);
    expect(r.stdout + r.stderr).not.toContain("ATTESTCANA");
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict, doc.drills[0]!.reason).toBe("fail");
    expect(doc.drills[0]!.reason).toMatch(/pg_wal\.tar is a symbolic link: not followed/);
  }, 180_000);

  it("a FIFO among a directory dump's data files is a defect, not a run blocked for good", async () => {
    const ws = workspace(
      (dir) => `sandbox: { runtime: local, timeout: 60s }
sources:
  - name: fifo
    type: dump-dir
    path: ${dir}/dumps
history: { csv: ${dir}/reports/history.csv }
reports: { dir: ${dir}/reports }
`,
    );
    dirs.push(ws.dir);
    const dump = join(ws.dir, "dumps", "app_20261120T0300.dir");
    cpSync(join(DUMPS, "good", "app_20261120T0300.dir"), dump, { recursive: true });
    // the first table's data, as a FIFO nobody writes (its uncompressed name is read first)
    const first = readdirSync(dump)
      .filter((n) => /^\d+\.dat\.gz$/.test(n))
      .sort()[0]!;
    rmSync(join(dump, first));
    execFileSync("mkfifo", [join(dump, first.replace(/\.gz$/, ""))]);

    const { doc } = await audit(ws.config);
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict, doc.drills[0]!.reason).toBe("fail");
    expect(doc.drills[0]!.reason).toMatch(/is not a regular file/);
  }, 120_000);

  it("a snapshot's tablespace_map linked to a host file is not read into the sandbox or the notes", async () => {
    buildBasebackups();
    const ws = basebackupWorkspace("snap", () => `${BASEBACKUPS}/wal`, "snap", "\n    select: all");
    // a root-only host file that reads as a tablespace map: its path would land in the notes
    const secret = join(ws.dir, "host", "map");
    mkdirSync(join(ws.dir, "host"), { mode: 0o700 });
    execFileSync("sh", [
      "-c",
      'umask 077 && printf "16999 /srv/%s\\n" "$1" > "$2"',
      "sh",
      "ATTESTCANARY7731",
      secret,
    ]);
    cpSync(join(BASEBACKUPS, "snapshots", "label"), join(ws.dir, "snap", "label"), { recursive: true });
    symlinkSync(secret, join(ws.dir, "snap", "label", "tablespace_map"));

    const { r, doc } = await audit(ws.config);
    expect(r.stdout + r.stderr).not.toContain("ATTESTCANARY");
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict, doc.drills[0]!.reason).toBe("fail");
    expect(doc.drills[0]!.reason).toMatch(/tablespace_map is a symbolic link/);
  }, 180_000);

  it("a cloned volume's data_subdir that leaves the clone is not followed, nor a PG_VERSION link; one that stays on it is", () => {
    const root = mkdtempSync(join(tmpdir(), "attest-rt-clone-"));
    dirs.push(root);
    // a data directory of the verifier host's own (what the link on the clone names)
    const hostData = join(root, "host-pgdata");
    mkdirSync(join(hostData, "global"), { recursive: true });
    writeFileSync(join(hostData, "PG_VERSION"), "15\n");
    writeFileSync(join(hostData, "global", "pg_control"), "");
    const clone = join(root, "clone");
    mkdirSync(clone);
    symlinkSync(hostData, join(clone, "pgdata"));
    // a production host's path, not the backup's defect: Attest cannot verify it here
    expect(() => findDataDir(clone, "pgdata")).toThrow(VerifierError);
    expect(() => findDataDir(clone, "pgdata")).toThrow(/is a symbolic link that leaves the clone/);
    // a real directory whose PG_VERSION names a host file
    const clone2 = join(root, "clone2");
    mkdirSync(join(clone2, "pgdata", "global"), { recursive: true });
    writeFileSync(join(clone2, "pgdata", "global", "pg_control"), "");
    symlinkSync(join(hostData, "PG_VERSION"), join(clone2, "pgdata", "PG_VERSION"));
    expect(() => findDataDir(clone2, "pgdata")).toThrow(BackupDefectError);
    expect(() => findDataDir(clone2, "pgdata")).toThrow(/PG_VERSION on the clone is a symbolic link/);
    // a link that stays on the clone (a version directory behind a stable name) is followed
    const clone3 = join(root, "clone3");
    mkdirSync(join(clone3, "data", "15", "global"), { recursive: true });
    writeFileSync(join(clone3, "data", "15", "PG_VERSION"), "15\n");
    symlinkSync("data/15", join(clone3, "pgdata"));
    for (const sub of ["pgdata", "pgdata//", "./pgdata"])
      expect(findDataDir(clone3, sub)).toMatchObject({ subdir: "data/15", pgMajor: 15 });
  });

  it("a socket directory is emptied without walking into a directory the sandbox made there", () => {
    const root = mkdtempSync(join(tmpdir(), "attest-rt-sock-"));
    dirs.push(root);
    const sock = join(root, "sock");
    const victim = join(root, "victim");
    mkdirSync(join(sock, "made", "sub"), { recursive: true });
    mkdirSync(victim);
    writeFileSync(join(victim, "keep"), "host file\n");
    writeFileSync(join(sock, ".s.PGSQL.5432.lock"), "1\n");
    // what a process racing the removal would swap in: a link to a host directory
    symlinkSync(victim, join(sock, "made", "sub", "link"));
    expect(() => handOverSocketDir(sock, undefined)).toThrow(VerifierError);
    expect(existsSync(join(victim, "keep"))).toBe(true);
  });
});
