/** `attest evidence export` and `attest evidence verify`: the signed bundle an auditor takes away. */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, dirname, join } from "node:path";
import { ed25519PublicKey } from "../evidence/bundle-manifest.js";
import { exportBundle } from "../evidence/export-bundle.js";
import { FRAMEWORK_IDS, type FrameworkId } from "../evidence/framework-ids.js";
import type { ArchiveEntry } from "../evidence/tar-archive.js";
import { verifyBundle } from "../evidence/verify-bundle.js";
import type { HistoryRecord } from "../history/history-record.js";
import { HistoryStore } from "../history/history-store.js";
import { writeExport } from "../report/export-files.js";
import { type ExportInput, exportModel } from "../report/export-model.js";
import { controlSections } from "../report/frameworks/control-mapping.js";
import { writeAtomic } from "../report/mail/outbox.js";
import { coerceError, UsageError } from "../util/errors.js";
import { configFrom, fail, printJson } from "./common.js";
import { parseBound, parseFrameworks } from "./report.js";

/** The flags of `evidence export`. */
export interface ExportFlags {
  config?: string;
  from?: string;
  to?: string;
  out?: string;
  framework?: string;
  json?: boolean;
}

/**
 * The period's compliance report (PDF and JSON, with the control mapping), rendered into a
 * private temporary folder and read back as bundle entries under report/.
 */
async function periodReport(
  input: ExportInput,
  frameworks: readonly FrameworkId[],
  contentSha256: string,
): Promise<ArchiveEntry[]> {
  const model = exportModel(input);
  model.controls = controlSections(frameworks, model, input.history);
  model.bundle = { contentSha256 };
  const dir = mkdtempSync(join(tmpdir(), "attest-bundle-"));
  try {
    const files = await writeExport(model, ["pdf", "json"], dir);
    return files.map((f) => ({ path: basename(f), data: readFileSync(f) }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs `evidence export`; returns the exit code. */
export async function exportCommand(flags: ExportFlags): Promise<number> {
  try {
    const config = configFrom(flags.config);
    if (!flags.from || !flags.to) throw new UsageError("--from DATE and --to DATE are required");
    const from = parseBound(flags.from, "--from", false);
    const to = parseBound(flags.to, "--to", true);
    if (from > to) throw new UsageError(`--from ${flags.from} is after --to ${flags.to}`);
    if (!config.evidence?.signing_key)
      throw new UsageError(`${config.file}: evidence.signing_key is not set: a bundle cannot be signed`);
    const store = new HistoryStore(config.history.csv);
    const chain = store.verify();
    let history: HistoryRecord[] = [];
    try {
      history = store.read();
    } catch (err) {
      throw new Error(`${config.history.csv} cannot be read`, { cause: coerceError(err) });
    }
    const now = new Date();
    const frameworks = flags.framework
      ? parseFrameworks(flags.framework)
      : config.evidence?.frameworks.length
        ? config.evidence.frameworks
        : [...FRAMEWORK_IDS];
    const bundle = await exportBundle({
      config,
      history,
      from,
      to,
      now,
      report: (content) => periodReport({ config, history, chain, from, to, now }, frameworks, content),
    });
    const out =
      flags.out ??
      join(
        config.reports.dir,
        "bundles",
        `attest-evidence-${from.toISOString().slice(0, 10)}_${to.toISOString().slice(0, 10)}.tar.gz`,
      );
    mkdirSync(dirname(out), { recursive: true });
    writeAtomic(out, bundle.archive);
    if (flags.json) {
      printJson({
        kind: "evidence-export",
        file: out,
        manifestSha256: bundle.manifestSha256,
        signer: bundle.manifest.signer,
        history: bundle.manifest.history,
        files: bundle.manifest.files.length,
        chain,
      });
    } else {
      const h = bundle.manifest.history;
      process.stdout.write(
        `wrote ${out}\nmanifest sha256 ${bundle.manifestSha256}\n${h.periodRows} history rows in the period, ${h.linkRows} after it up to head ${h.head}\n${bundle.manifest.files.length} files, signed by key ${bundle.manifest.signer}\n`,
      );
      if (!chain.ok) process.stdout.write(`HISTORY CHAIN BROKEN: ${chain.problem}\n`);
    }
    // the bundle is written either way (its verification will name the break); not a clean result
    return chain.ok ? 0 : 1;
  } catch (err) {
    return fail(err, flags.json);
  }
}

/** The flags of `evidence verify`. */
export interface VerifyFlags {
  publicKey?: string;
  expectHead?: string;
  json?: boolean;
}

/** Runs `evidence verify`; returns the exit code. */
export function verifyCommand(file: string, flags: VerifyFlags): number {
  try {
    if (!flags.publicKey) throw new UsageError("--public-key KEY.pem is required");
    let archive: Buffer;
    let pem: string;
    try {
      archive = readFileSync(file);
      pem = readFileSync(flags.publicKey, "utf8");
    } catch (err) {
      throw new UsageError(coerceError(err).message);
    }
    let key: ReturnType<typeof ed25519PublicKey>;
    try {
      key = ed25519PublicKey(pem);
    } catch (err) {
      throw new UsageError(`${flags.publicKey}: ${coerceError(err).message}`);
    }
    const v = verifyBundle(archive, key, flags.expectHead);
    if (flags.json) {
      printJson({
        kind: "evidence-verify",
        file,
        ok: v.ok,
        problem: v.problem,
        manifestSha256: v.manifestSha256,
        period: v.manifest?.period,
        history: v.manifest?.history,
        files: v.files,
      });
    } else if (v.ok) {
      const m = v.manifest!;
      process.stdout.write(
        `${file}: OK — signature, ${v.files} file hashes and the history chain hold\norganization ${m.organization}, period ${m.period.from} .. ${m.period.to}\nhistory rows ${m.history.firstRow}..${m.history.firstRow + m.history.periodRows - 1} in the period, head ${m.history.head}\nmanifest sha256 ${v.manifestSha256}\ncontent sha256 ${m.contentSha256} (printed on the bundled report's cover)\n`,
      );
    } else process.stdout.write(`${file}: DOES NOT VERIFY — ${v.problem}\n`);
    return v.ok ? 0 : 1;
  } catch (err) {
    return fail(err, flags.json);
  }
}
