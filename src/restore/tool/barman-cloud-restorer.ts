/**
 * Restores a barman-cloud backup (CloudNativePG) into an empty local sandbox with
 * `barman-cloud-restore`, run as a process of the sandbox (confined, its own account), then
 * archive recovery with `barman-cloud-wal-restore` as restore_command. Both reach the bucket
 * through the store relay (network to the store's endpoint only); their keys reach them alone,
 * from an environment file the forwarder reads, never the server's environment or Attest's.
 */
import { writeFileSync } from "node:fs";
import { posix } from "node:path";
import { type Backup, type DrillPlan, detailOf, type Reached, type RecoveryTarget } from "../../model.js";
import { endpointOf, openSandboxStore, type StoreEndpoint } from "../../runtimes/local/store-relay.js";
import type { Sandbox } from "../../runtimes/runtime.js";
import { BARMAN_BACKUP_ID, serverPrefix } from "../../sources/barman-cloud/barman-cloud-source.js";
import { parseBackupLabel } from "../../sources/basebackup/backup-label.js";
import type { S3StorageConfig } from "../../storage/s3/s3-config.js";
import { BackupDefectError, VerifierError } from "../../util/errors.js";
import { DEFAULT_WAL_SEGMENT_SIZE, parseLsn, segmentName, segmentOfLsn } from "../../wal/wal-names.js";
import { sandboxSh } from "../physical/sandbox-shell.js";
import type { RestoreContext, RestoreOutcome, Restorer } from "../restorer.js";
import { recoverWithTool, rejectProblem, requireLocal, runTool } from "./tool-restore.js";

/** Options of the barman-cloud restorer. */
export interface BarmanCloudRestorerOptions {
  /** The bucket (an `s3` store) the backups are in. */
  store: S3StorageConfig;
  /** Key prefix of the backups (`path` of the source). */
  path: string;
  serverName: string;
  /** Superuser of the backed-up cluster (to connect before the sandbox's own login exists). */
  superuser: string;
}

/** What barman-cloud says when the store refused it or could not be reached: the verifier's problem. */
const NOT_A_DEFECT =
  /AccessDenied|InvalidAccessKeyId|SignatureDoesNotMatch|SSL|certificate|Could not connect|EndpointConnectionError|NetworkErrorExit|Bucket .* does not exist|ReadTimeout|is not empty/i;
/** What says the backup's own objects are missing or broken. */
const DEFECT =
  /NoSuchKey|Not Found|404|does not exists?|unexpected end of data|invalid header|CRC|Compressed file ended|not a gzip file|truncated/i;

/** Where the restore's tablespaces land inside the data directory (then per OID). */
const TABLESPACES = "attest_barman_cloud_tablespaces";

/** Restores barman-cloud backups (local runtime only: the tool and the relay run on this host). */
export class BarmanCloudRestorer implements Restorer {
  readonly name = "barman-cloud";
  readonly sandboxMode = "empty" as const;
  readonly #opts: BarmanCloudRestorerOptions;

  constructor(opts: BarmanCloudRestorerOptions) {
    this.#opts = Object.freeze({ ...opts });
  }

  /** The store's CA file (read-only): the only host file barman-cloud reads. */
  inputs(_plan: DrillPlan): string[] {
    return this.#opts.store.ca_file ? [this.#opts.store.ca_file] : [];
  }

  async preflight(plan: DrillPlan): Promise<void> {
    rejectProblem(plan.backup);
    // the source lists no other ids; an argument the tool could read as a name or an option is refused
    if (!BARMAN_BACKUP_ID.test(plan.backup.id))
      throw new VerifierError(
        `${JSON.stringify(plan.backup.id)} is not a barman backup id (YYYYMMDDTHHMMSS); barman-cloud-restore is not run with it`,
      );
  }

  /** The bucket URL barman-cloud is given: `s3://bucket/path`. */
  #sourceUrl(): string {
    const path = this.#opts.path.replace(/\/+$/, "");
    return `s3://${this.#opts.store.bucket}${path ? `/${path}` : ""}`;
  }

  /** The endpoint URL the tool is given and the relay connects to (AWS's regional one when none is set). */
  #endpoint(): { url: string; endpoint: StoreEndpoint } {
    const { store } = this.#opts;
    const url = store.endpoint ?? `https://s3.${store.region}.amazonaws.com`;
    return { url, endpoint: endpointOf(url) };
  }

  /** The tool's environment: keys, region, CA, nothing of the host's AWS files. */
  #toolEnv(sandbox: Sandbox, awsConfig: string): Record<string, string> {
    const { store } = this.#opts;
    if (!store.access_key_id || !store.secret_access_key)
      throw new VerifierError(
        "barman-cloud drills need the store's access_key_id and secret_access_key (the host's AWS credential chain is not handed into the sandbox)",
      );
    return {
      AWS_ACCESS_KEY_ID: store.access_key_id,
      AWS_SECRET_ACCESS_KEY: store.secret_access_key,
      ...(store.session_token ? { AWS_SESSION_TOKEN: store.session_token } : {}),
      AWS_DEFAULT_REGION: store.region,
      ...(store.ca_file ? { AWS_CA_BUNDLE: sandbox.inputPath(store.ca_file) } : {}),
      AWS_CONFIG_FILE: awsConfig,
      AWS_SHARED_CREDENTIALS_FILE: "/dev/null",
      AWS_EC2_METADATA_DISABLED: "true",
    };
  }

  async restore(sandbox: Sandbox, ctx: RestoreContext): Promise<RestoreOutcome> {
    const { backup } = ctx.plan;
    await this.preflight(ctx.plan);
    requireLocal(sandbox, "barman-cloud");
    const target: RecoveryTarget = ctx.plan.target ?? { kind: "latest" };
    const { url, endpoint } = this.#endpoint();
    const sandboxDir = posix.dirname(sandbox.dataDir);
    // boto3 picks the addressing style from its config file; path style for MinIO and Ceph RGW
    const awsConfig = posix.join(sandboxDir, "store", "aws-config");
    // a virtual-hosted bucket is reached as bucket.host
    await using access = await openSandboxStore(sandboxDir, endpoint, this.#toolEnv(sandbox, awsConfig), [
      `${this.#opts.store.bucket}.${endpoint.host}`,
    ]);
    writeFileSync(
      awsConfig,
      `[default]\ns3 =\n    addressing_style = ${this.#opts.store.path_style ? "path" : "auto"}\n`,
      { mode: 0o644 },
    );
    const notes = [
      `the bucket's endpoint ${endpoint.host}:${endpoint.port} was the only network barman-cloud had (store relay)`,
    ];
    const source = this.#sourceUrl();
    const tablespaces = detailOf(backup, "barman-cloud")?.tablespaces ?? [];
    const tsDir = posix.join(sandboxDir, "home", "barman-cloud-tablespaces");
    for (const t of tablespaces)
      if (/[:\n\r]/.test(t.name) || !/^\d+$/.test(t.oid))
        throw new VerifierError(
          `tablespace "${t.name}" of ${backup.id} cannot be relocated with --tablespace NAME:LOCATION; Attest does not let it be written to its original path`,
        );
    const args = [
      "barman-cloud-restore",
      "--endpoint-url",
      url,
      ...tablespaces.flatMap((t) => ["--tablespace", `${t.name}:${tsDir}/${t.oid}`]),
      source,
      this.#opts.serverName,
      backup.id,
      sandbox.dataDir,
    ];
    // PostgreSQL replaces %f/%p; the forwarder gives the tool the store and its keys
    const restoreCommand = [
      access.script,
      "barman-cloud-wal-restore",
      "--endpoint-url",
      url,
      source,
      this.#opts.serverName,
    ]
      .map(shellWord)
      .join(" ")
      .replace(/%/g, "%%");
    // awaited here: the resources held with `await using` above must outlive the restore
    const written = await runTool(sandbox, ctx, {
      program: access.script,
      args,
      progress: `barman-cloud-restore ${backup.id}`,
      tailLines: 4,
      failure: (tail, timedOut) => {
        const msg = `barman-cloud-restore of ${backup.id} failed: ${tail}`;
        if (timedOut || NOT_A_DEFECT.test(tail) || !DEFECT.test(tail)) return new VerifierError(msg);
        return new BackupDefectError(msg);
      },
      done: (ms) =>
        `barman-cloud-restore fetched ${backup.id} from ${source} in ${Math.round(ms / 100) / 10} s`,
      ...(tablespaces.length
        ? {
            tablespaces: {
              from: tsDir,
              to: TABLESPACES,
              required: true,
              note: `tablespaces ${tablespaces.map((t) => `${t.name} (${t.oid})`).join(", ")} restored inside the sandbox, not at their original locations`,
            },
          }
        : {}),
    });
    // before recovery: the data directory must be the listed backup, not one the tool picked by name
    const labelNote = await checkRestoredLabel(sandbox, backup);
    const outcome = await recoverWithTool(sandbox, ctx, [...notes, ...written, labelNote], {
      target,
      superuser: this.#opts.superuser,
      restoreCommand: { command: `${restoreCommand} %f %p`, why: "WAL comes from the barman-cloud bucket" },
      // prepareDataDir needs an archive path; the restore_command appended at start replaces its copy
      archiveDir: posix.join(sandboxDir, "store", "wals"),
      moved: [{ from: tsDir, to: TABLESPACES }],
      explainStop: (facts) =>
        facts.lastRestored
          ? `barman-cloud-wal-restore could not deliver the segment after ${facts.lastRestored} (missing from ${source}/${serverPrefix({ path: "", server_name: this.#opts.serverName })}wals/?)`
          : "barman-cloud-wal-restore delivered no WAL at all",
      note: "restore_command: barman-cloud-wal-restore from the same bucket (read-only keys suffice)",
      checkEnd: (_server, reached) => checkReachedArchiveEnd(backup, reached, source),
      // the relay and the keys go before Attest's first query after promotion
      closeStore: () => access.close(),
    });
    const refused = access.relay.refused();
    if (refused > 0)
      outcome.notes.push(
        `the store relay refused ${refused} connection(s) from the sandbox beyond its limit of concurrent connections`,
      );
    return outcome;
  }
}

/**
 * The restored backup_label must name the listed backup: its START WAL LOCATION is the
 * backup.info's begin_xlog/begin_wal, and a barman LABEL names the listed id. Otherwise the tool
 * restored another backup (a backup.info with no data of its own, S3-8) and the drill would
 * vouch for bytes that are not this backup's.
 */
async function checkRestoredLabel(sandbox: Sandbox, backup: Backup): Promise<string> {
  const r = await sandboxSh(sandbox, 'cat -- "$1"', [posix.join(sandbox.dataDir, "backup_label")], {
    allowFailure: true,
  });
  const wrong = (why: string) =>
    new BackupDefectError(`barman-cloud-restore restored a different backup than listed (${why})`);
  if (r.code !== 0) throw wrong(`no backup_label in the restored data directory for ${backup.id}`);
  let label: ReturnType<typeof parseBackupLabel>;
  try {
    label = parseBackupLabel(r.stdout);
  } catch (err) {
    throw new BackupDefectError(
      `barman-cloud-restore restored a different backup than listed (its backup_label is unreadable for ${backup.id})`,
      { cause: err },
    );
  }
  const listed = backup.walRange;
  if (listed && parseLsn(label.startLsn) !== parseLsn(listed.startLsn))
    throw wrong(`backup_label starts at ${label.startLsn}, ${backup.id}'s backup.info at ${listed.startLsn}`);
  if (listed?.startWal && label.startWal && label.startWal !== listed.startWal)
    throw wrong(`backup_label starts in ${label.startWal}, ${backup.id}'s backup.info in ${listed.startWal}`);
  const named = label.label?.match(/\b(\d{8}T\d{6})\b/)?.[1];
  if (label.label?.startsWith("Barman backup") && named !== backup.id)
    throw wrong(`backup_label's LABEL is "${label.label}", not ${backup.id}`);
  return `the restored backup_label is ${backup.id}'s (start ${label.startLsn})`;
}

/**
 * For target `latest`: replay must have reached the newest segment the bucket lists on its
 * timeline (its detail's walLast); PostgreSQL ends recovery quietly when the restore_command finds
 * nothing, so a missing object shows only here. Names the segment that could not be delivered.
 */
function checkReachedArchiveEnd(backup: Backup, reached: Reached, source: string): void {
  const detail = detailOf(backup, "barman-cloud");
  const last = detail?.walLast;
  if (!last || !reached.lsn || reached.timeline === undefined) return;
  const segSize = detail?.walSegmentSize || DEFAULT_WAL_SEGMENT_SIZE;
  const seg = segmentOfLsn(parseLsn(reached.lsn) - 1n, segSize);
  const at = segmentName(reached.timeline, seg, segSize);
  // only comparable on one timeline: a later timeline's WAL is followed by recovery_target_timeline
  if (at.slice(0, 8) !== last.slice(0, 8) || at >= last) return;
  const next = segmentName(reached.timeline, seg + 1, segSize);
  throw new BackupDefectError(
    `the end of the WAL archive was not reached: replay ended at ${reached.lsn} in ${at}${reached.timestamp ? ` (last transaction at ${reached.timestamp})` : ""}, ` +
      `but ${source} lists WAL up to ${last}; barman-cloud-wal-restore could not deliver ${next} (missing from the bucket?)`,
  );
}

/** A word for sh: bare when safe, else single-quoted. */
function shellWord(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
