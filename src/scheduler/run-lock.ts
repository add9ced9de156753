/**
 * The run lock shared by `attest serve` and `attest audit`/`drill`: one lock per history file,
 * since history appends must not interleave.
 *
 * The lock is a file holding its owner (pid, the kernel's start time of that pid, host, run
 * id). It is created exclusively: link(2) of a fully written temp file, which fails with
 * EEXIST exactly like O_EXCL but never shows a half-written owner. A lock whose owner
 * process is gone is taken over under a second exclusive file (`LOCK.takeover`): only its
 * holder may remove a stale lock, after re-reading it, so two contenders cannot both win.
 *
 * The holder renews a lease on the lock (its mtime) every `renewMs`. An owner on this host is
 * dead when its pid is gone, reused or a zombie; an owner on another host (a CronJob pod, which
 * gets a new hostname every run) cannot be asked, so its lock is stale once the lease it
 * declared has not been renewed for that long. The lease is the lock's mtime, set from the
 * holder's clock and read against the contender's: hosts sharing a lock need clocks that agree
 * to well within the lease (NTP does).
 */
import { randomBytes } from "node:crypto";
import {
  closeSync,
  fsyncSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  utimesSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { dirname } from "node:path";
import type { Config } from "../config/schema.js";
import { formatDuration } from "../util/duration.js";
import type { Logger } from "../util/log.js";
import { processAlive, processStartTime, processState } from "../util/os-user.js";
import { type Clock, systemClock } from "../util/retry.js";

/** Who holds a lock. */
export interface LockOwner {
  pid: number;
  /** Kernel start time of `pid`, to tell a reused pid apart. */
  pidStart?: string;
  host: string;
  runId: string;
  kind: string;
  startedAt: string;
  /** How long the lock stays valid without a renewal (older locks carry none). */
  leaseMs?: number;
}

/** Default lease of a run lock: another host may take it over after this long without renewal. */
export const DEFAULT_LEASE_MS = 120_000;
/** Default interval at which the holder renews its lease. */
export const DEFAULT_RENEW_MS = 15_000;

/** Another run holds the lock (exit code 3). */
export class LockBusyError extends Error {
  override readonly name = "LockBusyError";
  constructor(
    readonly path: string,
    readonly owner: LockOwner | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** A held lock; `release()` or `await using` gives it back. */
export interface RunLock extends AsyncDisposable {
  readonly path: string;
  readonly owner: LockOwner;
  release(): void;
}

/** Options of acquireRunLock. */
export interface AcquireOptions {
  /** How long to wait for a lock held by a live run (0: refuse at once). */
  waitMs?: number;
  signal?: AbortSignal;
  clock?: Clock;
  logger?: Logger;
  /** What to suggest in the refusal (default: the CLI's `--wait`). */
  hint?: string;
  /** Lease this holder declares, and assumed for owners that declared none. */
  leaseMs?: number;
  /** How often the holder renews its lease (kept well below the lease). */
  renewMs?: number;
  /** Called once if the lock stops being ours while held (taken over after the lease lapsed). */
  onLost?: (err: Error) => void;
}

/** The lease settings of a config's `service:` section, for acquireRunLock. */
export function lockLeaseOf(config: Pick<Config, "service">): { leaseMs: number; renewMs: number } {
  return { leaseMs: config.service.lock_lease, renewMs: config.service.lock_renew };
}

/**
 * Set by a run that holds the lock for a child `attest` it starts (`{ path, runId }`): the
 * child runs under its parent's lock instead of waiting for it.
 */
export const INHERITED_LOCK_ENV = "ATTEST_INHERITED_LOCK";

/** The lock file of a config: `service.lock_file`, else the history file + `.lock`. */
export function runLockPath(config: Pick<Config, "history" | "service">): string {
  return config.service.lock_file ?? `${config.history.csv}.lock`;
}

/** One line naming the owner, for messages. */
export function describeOwner(o: LockOwner): string {
  const host = o.host !== hostname() ? ` on ${o.host}` : "";
  return `pid ${o.pid}${host}, run ${o.runId}, started ${o.startedAt}`;
}

function readOwner(path: string): LockOwner | undefined {
  try {
    const o = JSON.parse(readFileSync(path, "utf8")) as LockOwner;
    return typeof o.pid === "number" ? o : undefined;
  } catch {
    return undefined;
  }
}

/** What a contender knows when it judges an owner: its clock and the lease it assumes. */
export interface LockJudge {
  now?: number;
  leaseMs?: number;
  logger?: Logger;
}

/** Why an owner is judged dead, or undefined while it may still run. */
function deadOwner(o: LockOwner | undefined, path: string, judge: LockJudge): string | undefined {
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
  } catch {
    return "the lock is gone";
  }
  const age = (judge.now ?? Date.now()) - mtimeMs;
  // unreadable: only a lock older than a minute is treated as debris
  if (!o) return age < 60_000 ? undefined : "its owner record is unreadable";
  if (o.host !== hostname()) {
    const lease = o.leaseMs ?? judge.leaseMs ?? DEFAULT_LEASE_MS;
    return age < lease ? undefined : `its lease of ${formatDuration(lease)} expired`;
  }
  // a zombie has exited and only waits for its parent to reap it
  if (processState(o.pid) === "Z") return "its process is a zombie";
  if (!processAlive(o.pid, o.pidStart)) return "its process is gone";
  return undefined;
}

const errno = (err: unknown) => (err as NodeJS.ErrnoException).code;

function writeTemp(path: string, content: string): string {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  const fd = openSync(tmp, "wx", 0o644);
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

type Attempt = { held: true; ino: number } | { held: false; owner: LockOwner | undefined; retry: boolean };

/** Filesystems without hard links answer link(2) with one of these. */
const NO_LINKS = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

function attempt(path: string, owner: LockOwner, judge: LockJudge): Attempt {
  const content = `${JSON.stringify(owner)}\n`;
  const tmp = writeTemp(path, content);
  try {
    linkSync(tmp, path);
    return { held: true, ino: statSync(path).ino };
  } catch (err) {
    if (NO_LINKS.has(errno(err) ?? "")) {
      const ino = createExclusive(path, content);
      if (ino !== undefined) return { held: true, ino };
    } else if (errno(err) !== "EEXIST") throw new Error(`cannot create lock ${path}`, { cause: err });
  } finally {
    unlinkSync(tmp);
  }
  const current = readOwner(path);
  if (deadOwner(current, path, judge) === undefined) return { held: false, owner: current, retry: false };
  return { held: false, owner: current, retry: takeOverStaleLock(path, judge) };
}

/** O_EXCL create (no hard links here): a reader may see it empty for a moment, and waits. */
function createExclusive(path: string, content: string): number | undefined {
  let fd: number;
  try {
    fd = openSync(path, "wx", 0o644);
  } catch (err) {
    if (errno(err) === "EEXIST") return undefined;
    throw new Error(`cannot create lock ${path}`, { cause: err });
  }
  try {
    writeSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return statSync(path).ino;
}

/**
 * Removes a stale lock while holding `PATH.takeover` (created exclusively); returns whether
 * the caller should try to create the lock again at once. A contender that judged the lock
 * stale a moment ago cannot remove a live run's lock that replaced it: the owner is judged
 * again under the guard.
 */
export function takeOverStaleLock(path: string, judge: LockJudge = {}): boolean {
  const guard = `${path}.takeover`;
  let fd: number;
  try {
    fd = openSync(guard, "wx", 0o644);
  } catch (err) {
    if (errno(err) !== "EEXIST") throw new Error(`cannot create ${guard}`, { cause: err });
    removeDeadGuard(guard);
    return true;
  }
  try {
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    // under the guard nobody else removes the lock and a dead owner cannot release it, so
    // what we judge now is what we move aside; the inode check covers a guard that was
    // wrongly judged dead (its holder stopped for 10 s in between)
    let judged: ReturnType<typeof statSync>;
    try {
      judged = statSync(path);
    } catch {
      return true;
    }
    const stale = readOwner(path);
    const why = deadOwner(stale, path, judge);
    if (why === undefined) return true;
    const aside = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.stale`;
    try {
      renameSync(path, aside);
    } catch (err) {
      if (errno(err) === "ENOENT") return true;
      throw err;
    }
    if (statSync(aside).ino !== judged.ino) {
      try {
        linkSync(aside, path);
      } catch {
        // a newer lock is in place already
      }
    } else {
      const leaseAge = Math.max(0, (judge.now ?? Date.now()) - judged.mtimeMs);
      judge.logger?.warn(`taking over a stale run lock: ${why}`, {
        lock: path,
        ...(stale ? { pid: stale.pid, host: stale.host, runId: stale.runId } : {}),
        leaseAge: formatDuration(Math.round(leaseAge)),
      });
    }
    unlinkSync(aside);
    return true;
  } finally {
    try {
      unlinkSync(guard);
    } catch {
      // already gone
    }
  }
}

/** A takeover guard lives for a few system calls; one older than 10 s belongs to a killed process. */
function removeDeadGuard(guard: string): void {
  let st: ReturnType<typeof statSync>;
  try {
    st = statSync(guard);
  } catch {
    return;
  }
  if (Date.now() - st.mtimeMs < 10_000) return;
  const aside = `${guard}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    renameSync(guard, aside);
  } catch {
    return;
  }
  // moved a fresh guard by mistake (it was replaced between stat and rename): put it back
  if (statSync(aside).ino !== st.ino) {
    try {
      linkSync(aside, guard);
    } catch {
      // someone holds a newer guard already
    }
  }
  unlinkSync(aside);
}

/**
 * Takes the lock for a run, waiting up to `waitMs` for a live owner to finish. Throws
 * LockBusyError naming the owner when it stays held.
 */
export async function acquireRunLock(
  path: string,
  run: { runId: string; kind: string },
  opts: AcquireOptions = {},
): Promise<RunLock> {
  const clock = opts.clock ?? systemClock;
  const waitMs = opts.waitMs ?? 0;
  const start = clock.now();
  mkdirSync(dirname(path), { recursive: true });
  const inherited = inheritedLock(path);
  if (inherited) return inherited;
  const pidStart = processStartTime(process.pid);
  const owner: LockOwner = {
    pid: process.pid,
    ...(pidStart ? { pidStart } : {}),
    host: hostname(),
    runId: run.runId,
    kind: run.kind,
    startedAt: new Date(clock.now()).toISOString(),
    leaseMs: opts.leaseMs ?? DEFAULT_LEASE_MS,
  };
  let announced = false;
  for (let spins = 0; ; spins++) {
    const judge = {
      now: clock.now(),
      leaseMs: owner.leaseMs,
      ...(opts.logger ? { logger: opts.logger } : {}),
    };
    const a = attempt(path, owner, judge);
    if (a.held) {
      const renewMs = Math.min(opts.renewMs ?? DEFAULT_RENEW_MS, Math.floor((owner.leaseMs ?? 0) / 4));
      return heldLock(path, owner, a.ino, {
        renewMs,
        clock,
        ...(opts.logger ? { logger: opts.logger } : {}),
        ...(opts.onLost ? { onLost: opts.onLost } : {}),
      });
    }
    if (a.retry && spins < 50) {
      // a stale lock was removed, or another contender is removing it: try again shortly
      await clock.sleep(spins === 0 ? 0 : 20, opts.signal);
      continue;
    }
    const waited = clock.now() - start;
    if (waited >= waitMs) throw busy(path, a.owner, waitMs, judge, opts.hint);
    if (!announced && a.owner) {
      opts.logger?.info(`waiting up to ${formatDuration(waitMs)} for the run lock`, {
        lock: path,
        holder: describeOwner(a.owner),
      });
      announced = true;
    }
    spins = 0;
    await clock.sleep(Math.min(1000, waitMs - waited), opts.signal);
  }
}

function busy(
  path: string,
  owner: LockOwner | undefined,
  waitMs: number,
  judge: LockJudge,
  hint?: string,
): LockBusyError {
  const who = owner
    ? `another Attest run (${describeOwner(owner)}${leaseLeft(path, owner, judge)})`
    : "another Attest run";
  const advice =
    hint ?? (waitMs > 0 ? "retry later or pass a longer --wait" : "retry later or pass --wait 10m");
  const verb = waitMs > 0 ? `still holds ${path} after ${formatDuration(waitMs)}` : `holds ${path}`;
  return new LockBusyError(path, owner, `${who} ${verb}; ${advice}`);
}

/** For an owner on another host (only its lease can free the lock): when that lease runs out. */
function leaseLeft(path: string, owner: LockOwner, judge: LockJudge): string {
  if (owner.host === hostname()) return "";
  try {
    const lease = owner.leaseMs ?? judge.leaseMs ?? DEFAULT_LEASE_MS;
    const left = lease - ((judge.now ?? Date.now()) - statSync(path).mtimeMs);
    return `, its lease runs out in ${formatDuration(Math.max(0, left))} unless renewed`;
  } catch {
    return "";
  }
}

/** The parent's lock, when this process was started under it (nothing to release). */
function inheritedLock(path: string): RunLock | undefined {
  const raw = process.env[INHERITED_LOCK_ENV];
  if (!raw) return undefined;
  let claim: { path?: string; runId?: string };
  try {
    claim = JSON.parse(raw) as typeof claim;
  } catch {
    return undefined;
  }
  const owner = readOwner(path);
  if (claim.path !== path || !owner || owner.runId !== claim.runId || owner.pid !== process.ppid)
    return undefined;
  return { path, owner, release: () => {}, [Symbol.asyncDispose]: async () => {} };
}

function heldLock(
  path: string,
  owner: LockOwner,
  ino: number,
  lease: { renewMs: number; clock: Clock; logger?: Logger; onLost?: (err: Error) => void },
): RunLock {
  const logger = lease.logger;
  let released = false;
  let renewal: NodeJS.Timeout | undefined;
  let lost = false;
  const renew = () => {
    try {
      if (statSync(path).ino !== ino) throw new Error("replaced");
      const t = new Date(lease.clock.now());
      utimesSync(path, t, t);
    } catch {
      // taken over after our lease lapsed (a stopped process, a partitioned host): two runs
      // would now append to one history, so the holder is told to stop
      clearInterval(renewal);
      lost = true;
      const message = `the run lock ${path} was taken over by another run after our lease lapsed`;
      logger?.error(message, { lock: path });
      lease.onLost?.(new Error(message));
    }
  };
  // the lease starts now, on the contenders' clock, not when the temp file was written
  renew();
  if (!lost) {
    renewal = setInterval(renew, Math.max(1, lease.renewMs));
    // renewing must not keep a finished process alive
    renewal.unref();
  }
  const release = () => {
    if (released) return;
    released = true;
    clearInterval(renewal);
    process.off("exit", release);
    try {
      // only our own file: a lock taken over after we were judged dead is not ours to remove
      const mine = readOwner(path);
      if (statSync(path).ino === ino && mine?.pid === owner.pid && mine.runId === owner.runId)
        unlinkSync(path);
      else logger?.warn("the run lock was no longer ours at release", { lock: path });
    } catch (err) {
      if (errno(err) !== "ENOENT") logger?.warn("could not remove the run lock", { lock: path });
    }
  };
  // a forced exit (second signal, grace exceeded) still gives the lock back
  process.on("exit", release);
  return { path, owner, release, [Symbol.asyncDispose]: async () => release() };
}

/** Holds the run lock for the length of `fn`. */
export async function withRunLock<T>(
  path: string,
  run: { runId: string; kind: string },
  opts: AcquireOptions,
  fn: (lock: RunLock) => Promise<T>,
): Promise<T> {
  await using lock = await acquireRunLock(path, run, opts);
  return await fn(lock);
}
