/**
 * Rule `rpo`: the newest backup must be younger than the target; so must the newest backup a
 * passing drill proved restorable (`rpo_verified`), and the measured RPO of the newest drill.
 */
import type { Violation } from "../model.js";
import { formatDuration } from "../util/duration.js";
import { CLOCK_TOLERANCE_MS, isPassing, label, type SeriesInput, violation, when } from "./series-input.js";

/**
 * Target of the newest verified backup: `rpo_verified`, else `rpo` + `verify_every` when both
 * are set; undefined (not judged) when nobody asked for verification.
 */
export function verifiedRpoTarget(p: SeriesInput["policies"]): number | undefined {
  if (p.rpo_verified !== undefined) return p.rpo_verified;
  if (p.rpo === undefined || p.verify_every === undefined) return undefined;
  return p.rpo + p.verify_every;
}

/** Evaluates `rpo` for one series. */
export function rpoRule(s: SeriesInput): Violation[] {
  const out: Violation[] = [];
  const name = label(s.source, s.series);
  const rpo = s.policies.rpo;
  const newest = s.backups.at(-1);

  if (rpo !== undefined && newest) {
    const age = Math.max(0, s.now - newest.at);
    if (age > rpo) {
      out.push(
        violation(
          s,
          "rpo",
          "critical",
          `newest backup of ${name} is ${formatDuration(age)} old (${newest.backup.id}, taken ${when(newest.at)}); the RPO target is ${formatDuration(rpo)}`,
          {
            aspect: "newest",
            backupId: newest.backup.id,
            createdAt: newest.backup.createdAt,
            ageSeconds: Math.round(age / 1000),
            targetSeconds: rpo / 1000,
          },
          newest.at + rpo,
        ),
      );
    }
  }

  const verifiedTarget = verifiedRpoTarget(s.policies);
  if (verifiedTarget !== undefined) {
    const proven = s.drills.filter(
      (d) => isPassing(d.verdict) && Number.isFinite(d.backupAt) && d.backupAt <= s.now + CLOCK_TOLERANCE_MS,
    );
    const newestProven = proven.reduce<(typeof proven)[number] | undefined>(
      (a, d) => (!a || d.backupAt > a.backupAt ? d : a),
      undefined,
    );
    if (newestProven) {
      const age = Math.max(0, s.now - newestProven.backupAt);
      if (age > verifiedTarget) {
        out.push(
          violation(
            s,
            "rpo",
            "warning",
            `newest backup of ${name} proven restorable by a drill is ${formatDuration(age)} old (${newestProven.backupId}, taken ${when(newestProven.backupAt)}); the target for verified backups is ${formatDuration(verifiedTarget)}`,
            {
              aspect: "verified",
              backupId: newestProven.backupId,
              ageSeconds: Math.round(age / 1000),
              targetSeconds: verifiedTarget / 1000,
            },
            newestProven.backupAt + verifiedTarget,
          ),
        );
      }
    } else if (s.policies.verify_every === undefined && s.backups.length > 0) {
      // with verify_every configured, that rule reports the missing verification instead;
      // critical once even the oldest backup is older than the target for verified backups
      const overdue = s.now - s.backups[0]!.at > verifiedTarget;
      out.push(
        violation(
          s,
          "rpo",
          overdue ? "critical" : "warning",
          `no backup of ${name} has been proven restorable by a passing drill yet`,
          {
            aspect: "verified",
            targetSeconds: verifiedTarget / 1000,
          },
        ),
      );
    }
  }

  if (rpo !== undefined) {
    // the drill of the newest backup that measured data freshness
    const measured = s.drills
      .filter((d) => isPassing(d.verdict) && d.measuredRpoSeconds !== undefined)
      .sort((a, b) => a.backupAt - b.backupAt || a.at - b.at)
      .at(-1);
    if (measured && measured.measuredRpoSeconds! * 1000 > rpo) {
      const ms = measured.measuredRpoSeconds! * 1000;
      out.push(
        violation(
          s,
          "rpo",
          "warning",
          `measured RPO of ${name} is ${formatDuration(ms)}: the newest data restored from ${measured.backupId} was that old when the drill ran (${when(measured.at)}); the RPO target is ${formatDuration(rpo)}`,
          {
            aspect: "measured",
            backupId: measured.backupId,
            measuredRpoSeconds: measured.measuredRpoSeconds,
            targetSeconds: rpo / 1000,
          },
          measured.at,
        ),
      );
    }
  }
  return out;
}
