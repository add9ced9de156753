/** Selection: which backups of a source get drilled this run. */
import type { HistoryRecord } from "../history/history-record.js";
import type { Backup, DrillPlan } from "../model.js";
import type { Source } from "../sources/source.js";
import { parseDuration } from "../util/duration.js";
import { UsageError } from "../util/errors.js";

/** Groups backups by series, each oldest first. */
export function bySeries(backups: readonly Backup[]): Map<string, Backup[]> {
  const m = new Map<string, Backup[]>();
  for (const b of backups) {
    const list = m.get(b.series) ?? [];
    list.push(b);
    m.set(b.series, list);
  }
  for (const list of m.values())
    list.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  return m;
}

/** Options of selectPlans. */
export interface SelectOptions {
  rules: readonly string[];
  now: Date;
  history: readonly HistoryRecord[];
  /** Random source for `random:` rules (tests pass a seeded one). */
  random?: () => number;
}

/**
 * Applies the selection rules to each series: `latest`, `all`, `all-new` (never verified),
 * `random:N@WINDOW` (N distinct backups from the window), or a backup id. A source may give a
 * rule its own meaning (PITR sampling, replay to the next backup) through `Source.plan`; its
 * plans for `all` serve `all-new` too.
 */
export function selectPlans(source: Source, backups: readonly Backup[], opts: SelectOptions): DrillPlan[] {
  const random = opts.random ?? Math.random;
  const plans: DrillPlan[] = [];
  const seen = new Set<string>();
  const add = (p: DrillPlan) => {
    const key = `${p.backup.id}|${JSON.stringify(p.target ?? null)}`;
    if (!seen.has(key)) {
      seen.add(key);
      plans.push(p);
    }
  };
  const verified = new Set(
    opts.history
      .filter((r) => r.recordType === "drill" && r.source === source.name && r.verdict !== "error")
      .map((r) => r.backupId),
  );
  for (const rule of opts.rules) {
    const own = source.plan?.(rule, backups, opts.now);
    if (own) {
      own.forEach(add);
      continue;
    }
    // all-new is `all` (with the source's own targets, e.g. replay to the next backup) minus the verified
    const ownAll = rule === "all-new" ? source.plan?.("all", backups, opts.now) : undefined;
    if (ownAll) {
      for (const p of ownAll)
        if (!verified.has(p.backup.id)) add({ ...p, reason: p.reason.replace(/^all\b/, "all-new") });
      continue;
    }
    const series = bySeries(backups);
    if (rule === "latest") {
      for (const list of series.values()) add({ backup: list.at(-1)!, reason: "latest" });
    } else if (rule === "all") {
      for (const b of backups) add({ backup: b, reason: "all" });
    } else if (rule === "all-new") {
      for (const b of backups) if (!verified.has(b.id)) add({ backup: b, reason: "all-new" });
    } else if (rule.startsWith("random:")) {
      const m = /^random:(\d+)@(\w+?)(\+oldest)?$/.exec(rule);
      const n = Number(m?.[1] ?? 1);
      const window = parseDuration(m?.[2] ?? "7d") ?? 7 * 86_400_000;
      for (const list of series.values()) {
        const pool = list.filter((b) => opts.now.getTime() - Date.parse(b.createdAt) <= window);
        const picked: Backup[] = [];
        if (m?.[3] && pool[0]) picked.push(pool.shift()!);
        while (picked.length < n && pool.length > 0)
          picked.push(pool.splice(Math.floor(random() * pool.length), 1)[0]!);
        for (const b of picked) add({ backup: b, reason: rule });
      }
    } else {
      const b = backups.find((x) => x.id === rule);
      if (!b) throw new SelectionError(`source ${source.name} has no backup with id "${rule}"`);
      add({ backup: b, reason: "by id" });
    }
  }
  return plans;
}

/** A selection that names a backup that does not exist (bad usage: exit 2). */
export class SelectionError extends UsageError {}
