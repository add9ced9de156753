/** What the server log says about a recovery (written with lc_messages=C, log_min_messages=log). */

/** Facts read from the log. */
export interface RecoveryLogFacts {
  /** Start of the last record replayed ("redo done at …"). */
  redoDoneAt?: string;
  /** Time of the last replayed transaction ("last completed transaction was at log time …"), ISO. */
  lastTransactionAt?: string;
  /** The last segment restore_command delivered. */
  lastRestored?: string;
  /** "recovery stopping …" text, when a target stopped it. */
  stopping?: string;
  /** Where consistency was reached. */
  consistentAt?: string;
  /** The startup process's fatal complaint, if it failed. */
  fatal?: string;
  /** New timeline chosen at promotion. */
  newTimeline?: number;
}

// FATALs a client connection produces while the server starts: not the recovery's failure
const CONNECTION_FATALS =
  /database system is (starting up|not yet accepting connections|shutting down|in recovery mode)|role ".*" does not exist|authentication failed|no pg_hba\.conf entry|terminating connection/;

/** Parses a PostgreSQL log timestamp (`2026-11-21 19:35:28.576065+00`) into ISO. */
export function parseLogTime(text: string): string | undefined {
  const m = /^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)(\.\d+)?(?:([+-])(\d\d)(?::?(\d\d))?)?/.exec(text.trim());
  if (!m) return undefined;
  const frac = (m[3] ?? ".000").slice(0, 4).padEnd(4, "0");
  const zone = m[4] ? `${m[4]}${m[5]}:${m[6] ?? "00"}` : "Z";
  const t = Date.parse(`${m[1]}T${m[2]}${frac}${zone}`);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** One log line pattern and what it sets. */
type LineRule = [RegExp, (m: RegExpExecArray, f: RecoveryLogFacts) => void];

const LINE_RULES: readonly LineRule[] = [
  [/restored log file "([0-9A-F]{24})" from archive/, (m, f) => (f.lastRestored = m[1])],
  [/redo done at ([0-9A-F]+\/[0-9A-F]+)/, (m, f) => (f.redoDoneAt = m[1])],
  [
    /last completed transaction was at log time (.+)$/,
    (m, f) => {
      const t = parseLogTime(m[1]!);
      if (t) f.lastTransactionAt = t;
    },
  ],
  [/recovery stopping (.+)$/, (m, f) => (f.stopping = m[1]!.trim())],
  [/consistent recovery state reached at ([0-9A-F]+\/[0-9A-F]+)/, (m, f) => (f.consistentAt = m[1])],
  [/selected new timeline ID: (\d+)/, (m, f) => (f.newTimeline = Number(m[1]))],
  [
    /\b(FATAL|PANIC):\s+(.*)$/,
    (m, f) => {
      if (!CONNECTION_FATALS.test(m[2]!)) f.fatal ??= `${m[1]}: ${m[2]!.trim()}`;
    },
  ],
];

/** Reads recovery facts from a log tail (the last start's lines matter; later lines win). */
export function readRecoveryLog(text: string): RecoveryLogFacts {
  const f: RecoveryLogFacts = {};
  for (const line of text.split("\n")) {
    for (const [re, apply] of LINE_RULES) {
      const m = re.exec(line);
      if (m) {
        apply(m, f);
        break;
      }
    }
  }
  return f;
}

/** How a failed recovery is judged: the backup's fault (fail) or the verifier's (error). */
export interface RecoveryFailure {
  defect: boolean;
  /** What went wrong, in words for the record. */
  what: string;
}

const DEFECTS: ReadonlyArray<[RegExp, string]> = [
  [
    /recovery ended before configured recovery target was reached/,
    "WAL replay ended before the recovery target was reached",
  ],
  [
    /WAL ends before end of online backup|WAL ends before consistent recovery point/,
    "the WAL the backup needs to become consistent is missing",
  ],
  [
    /could not locate required checkpoint record|could not locate a valid checkpoint record|could not find redo location|invalid checkpoint record/,
    "the backup's checkpoint record cannot be read (start WAL missing or damaged)",
  ],
  [
    /recovery target timeline \d+ does not exist/,
    "the archive lacks the history file of the timeline recovery must follow",
  ],
  [
    /requested timeline \d+ (is not a child|does not contain)/,
    "the archive's timeline history does not lead from this backup to the requested timeline",
  ],
  [
    /invalid page in block|page verification failed|WAL contains references to invalid pages|incorrect resource manager data checksum|invalid magic number|unexpected pageaddr/,
    "damaged data or WAL met during replay",
  ],
  [/could not (read|open) (file|block)/, "a data file of the backup is missing or short"],
  [/backup_label contains data inconsistent|invalid data in file "backup_label"/, "backup_label is damaged"],
];

/** Classifies a failure from its fatal message; unknown failures are the verifier's. */
export function classifyRecoveryFailure(fatal: string | undefined): RecoveryFailure {
  if (!fatal) return { defect: false, what: "the server stopped during recovery without a FATAL message" };
  if (/requested recovery stop point is before consistent recovery point/.test(fatal)) {
    return {
      defect: false,
      what: "the recovery target lies before the backup's consistency point (a newer target or older backup is needed)",
    };
  }
  for (const [re, what] of DEFECTS) if (re.test(fatal)) return { defect: true, what };
  return { defect: false, what: "recovery failed for a reason that does not point at the backup" };
}
