/** The one-line Nagios plugin output of `attest check`, with perfdata, and its exit code. */
import type { Finding, Violation } from "../model.js";
import type { SeriesStatus } from "../policy/series-status.js";

/** Nagios plugin exit codes. */
export const NAGIOS = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
const WORD = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

/** How many violation messages the status text names before "(+N more)". */
const NAMED = 3;

/** A perfdata label: letters, digits and underscores only. */
export function perfLabel(...parts: string[]): string {
  return parts
    .filter(Boolean)
    .join("_")
    .replace(/[^A-Za-z0-9_]+/g, "_")
    .replace(/_+/g, "_")
    .replace(/^_|_$/g, "");
}

const plain = (s: string) => s.replace(/\|/g, "/").replace(/\s+/g, " ").trim();
const secs = (n: number | undefined) => (n === undefined ? "" : String(Math.round(n)));

/** The plugin line and exit code for a check's result. */
export function nagiosLine(input: {
  violations: readonly Violation[];
  statuses: readonly SeriesStatus[];
  /** Sources that could not be listed. */
  problems: readonly Finding[];
  now: Date;
  /** Target age of the newest verified backup of a source (ms), when set. */
  verifiedTarget: (source: string) => number | undefined;
}): { line: string; code: number } {
  const { violations, statuses, problems, verifiedTarget } = input;
  const crit = violations.filter((v) => v.severity === "critical");
  const warn = violations.filter((v) => v.severity === "warning");
  const code = crit.length
    ? NAGIOS.critical
    : problems.length
      ? NAGIOS.unknown
      : warn.length
        ? NAGIOS.warning
        : NAGIOS.ok;

  const named = [
    ...problems.map((p) => p.message),
    ...[...crit, ...warn].map(
      (v) => `${v.series ? `${v.source}/${v.series}` : v.source} ${v.rule}: ${v.message}`,
    ),
  ];
  let text: string;
  if (named.length === 0) {
    text = `${statuses.length} series checked, no violation`;
  } else {
    const counts = [
      problems.length && `${problems.length} source${problems.length === 1 ? "" : "s"} not listed`,
      violations.length &&
        `${violations.length} violation${violations.length === 1 ? "" : "s"} (${crit.length} critical)`,
    ]
      .filter(Boolean)
      .join(", ");
    const more = named.length > NAMED ? ` (+${named.length - NAMED} more)` : "";
    text = `${counts}: ${named.slice(0, NAMED).join("; ")}${more}`;
  }

  const perf: string[] = [
    `violations_critical=${crit.length};;1;0`,
    `violations_warning=${warn.length};1;;0`,
  ];
  for (const s of statuses) {
    const label = perfLabel(s.source, s.series);
    if (s.newestAgeSeconds !== undefined)
      perf.push(`${label}_age=${s.newestAgeSeconds}s;;${secs(s.rpoSeconds)};0`);
    if (s.lastVerifiedBackupAt) {
      const age = Math.max(0, Math.round((input.now.getTime() - Date.parse(s.lastVerifiedBackupAt)) / 1000));
      const target = verifiedTarget(s.source);
      perf.push(`${label}_verified_age=${age}s;${secs(target === undefined ? undefined : target / 1000)};;0`);
    }
    if (s.lastDrill?.totalMs !== undefined) {
      perf.push(
        `${label}_restore=${secs(s.lastDrill.totalMs / 1000)}s;;${secs(s.rtoMs === undefined ? undefined : s.rtoMs / 1000)};0`,
      );
    }
  }
  return { line: `ATTEST ${WORD[code]} - ${plain(text)} | ${perf.join(" ")}`, code };
}
