/**
 * Plain dumps as DBAs make them, drilled by the real CLI in every runtime: cut-off dumps
 * (plain, gzipped, archives) fail, a LATIN1 dump arrives byte-identical, the \connect lines
 * genuine pg_dump -C writes restore in psql's restricted mode, and edited \connect lines are
 * refused before anything runs (fixtures/build-dumps.sh: cutoff/, plain/, connect/).
 */
import { existsSync, rmSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { DUMPS } from "./support/cli.js";
import { drillSuite, selectedRuntimes } from "./support/runtimes.js";

const CONNECT_PROBE = "/tmp/attest-pwned-connect-attest-shell-probe";
/** The people rows of the LATIN1 database, as LATIN1 bytes. */
const LATIN1_HEX = Buffer.from("José Müller/café,Zoë Ångström/über", "latin1").toString("hex");

describe.each(selectedRuntimes())("plain dumps in the %s runtime", (runtime) => {
  const { config, run } = drillSuite(runtime);
  const audit = (cfg: string) => run(["audit", "--config", cfg]);

  it("fails every cut-off dump, plain and gzipped at every cut point and archives too, naming the cut", async () => {
    const ws = config(`
sources:
  - name: cutoff
    type: dump-dir
    path: ${DUMPS}/cutoff
    select: all`);
    const { code, doc } = await audit(ws.config);
    const byId = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d]));
    expect(Object.keys(byId).sort()).toEqual([
      "app_cut.dir",
      "app_cut10.dump",
      "app_cut50.dump",
      "app_cut50.tar",
      "app_cut95.dump",
      "app_cut999.dump",
      "app_cut_copy.sql",
      "app_cut_footer.sql",
      "app_cut_statement.sql",
      "app_cut_statement.sql.gz",
      "app_cut_statement.sql.zst",
      "app_cut_stream.sql.gz",
      "app_cut_stream.sql.xz",
    ]);
    for (const d of doc.drills) expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("fail");
    // a cut at a statement boundary restores without a single error: only the footer tells
    expect(byId["app_cut_statement.sql"]!.reason).toMatch(
      /^dump is cut off: no completion footer \(last statement at line \d+: "ALTER TABLE ONLY sales\.payments/,
    );
    expect(byId["app_cut_statement.sql.gz"]!.reason).toBe(byId["app_cut_statement.sql"]!.reason);
    expect(byId["app_cut_statement.sql.zst"]!.reason).toBe(byId["app_cut_statement.sql"]!.reason);
    expect(byId["app_cut_footer.sql"]!.reason).toMatch(
      /^dump is cut off: no completion footer \(last statement/,
    );
    expect(byId["app_cut_copy.sql"]!.reason).toMatch(
      /^dump is cut off: no completion footer \(cut inside the data of the COPY at line \d+: "COPY inventory\.product_images/,
    );
    expect(byId["app_cut_stream.sql.gz"]!.reason).toMatch(/^dump is cut off: .*the gzip stream ends early/);
    expect(byId["app_cut_stream.sql.xz"]!.reason).toMatch(
      /^dump is cut off: no completion footer .*; xz stream is damaged or cut off: .*Unexpected end of input/,
    );
    for (const id of [
      "app_cut10.dump",
      "app_cut50.dump",
      "app_cut95.dump",
      "app_cut999.dump",
      "app_cut50.tar",
    ]) {
      expect(byId[id]!.reason, id).toMatch(
        /pg_restore failed|: archive cut off or damaged: .*\(checked against its TOC\)$/,
      );
    }
    expect(code).toBe(1);
  });

  it("restores a LATIN1 dump byte-identical, plain, gzip/bzip2/xz/zstd/lz4 and with -C, and -C dumps' \\connect lines in restricted mode", async () => {
    const query = (db: string) =>
      `{ name: latin1 bytes ${db}, database: ${db}, sql: "select encode(convert_to(string_agg(name || '/' || code, ',' order by id), 'LATIN1'), 'hex') from public.people", expect: "= ${LATIN1_HEX}" }`;
    const ws = config(`
sources:
  - name: plain
    type: dump-dir
    path: ${DUMPS}/plain
    select: all
    checks:
      queries:
        - ${query("latin1")}
        - ${query("latin1db")}
        - { name: regions, database: sales-eu, sql: "select count(*) from public.regions", expect: "= 25" }`);
    const { code, doc, stderr } = await audit(ws.config);
    expect(doc.drills.map((d) => d.backup.id).sort()).toEqual([
      "latin1_20261120T0300.sql",
      "latin1_20261120T0300.sql.bz2",
      "latin1_20261120T0300.sql.gz",
      "latin1_20261120T0300.sql.lz4",
      "latin1_20261120T0300.sql.xz",
      "latin1_20261120T0300.sql.zst",
      "latin1db_create_20261120T0300.sql",
      "sales-eu_20261120T0300.sql",
    ]);
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason} ${stderr.slice(-800)}`).toBe("pass");
      const ran = d.checks.filter((c) => c.name.startsWith("query:") && c.status === "pass");
      expect(ran, d.backup.id).toHaveLength(1);
      expect(d.notes.join(" "), d.backup.id).toMatch(/run with psql in restricted mode/);
    }
    expect(code).toBe(0);
  });

  it("applies the configured max_line to plain dumps", async () => {
    const ws = config(`
sources:
  - name: plain
    type: dump-dir
    path: ${DUMPS}/plain
    include: ["latin1db_create_*.sql"]
    max_line: "64"`);
    const { code, doc } = await audit(ws.config);
    expect(doc.drills).toHaveLength(1);
    expect(doc.drills[0]!.verdict).toBe("fail");
    expect(doc.drills[0]!.reason).toMatch(
      /^dump latin1db_create_20261120T0300\.sql line \d+ is longer than 64 bytes outside COPY data \(the configured limit\)/,
    );
    expect(code).toBe(1);
  });

  it("refuses a \\connect line with a trailing meta-command or a conninfo naming a host, before anything runs", async () => {
    rmSync(CONNECT_PROBE, { force: true });
    const ws = config(`
sources:
  - name: connect
    type: dump-dir
    path: ${DUMPS}/connect
    select: all`);
    const { code, doc } = await audit(ws.config);
    const byId = Object.fromEntries(doc.drills.map((d) => [d.backup.id, d]));
    expect(Object.keys(byId).sort()).toEqual([
      "connect_conninfo.sql",
      "connect_host.sql",
      "connect_shell.sql",
    ]);
    for (const d of doc.drills) {
      expect(d.verdict, `${d.backup.id}: ${d.reason}`).toBe("fail");
      expect(d.reason).toMatch(
        /contains the psql meta-command \\connect at line 31 .*refused, nothing of it was executed/,
      );
    }
    expect(byId["connect_shell.sql"]!.reason).toMatch(/a further meta-command/);
    expect(byId["connect_host.sql"]!.reason).toMatch(/host=127\.0\.0\.1/);
    expect(byId["connect_conninfo.sql"]!.reason).toMatch(/connection string/);
    expect(existsSync(CONNECT_PROBE)).toBe(false);
    expect(code).toBe(1);
  });
});
