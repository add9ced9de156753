/**
 * The one-line Nagios plugin output of `attest check`, with perfdata, and its exit code.
 * Thresholds follow the plugin range rules: a bare `N` alerts outside 0..N, `N:` below N.
 * Every threshold is the one the status itself applies, so the graph and the state agree.
 */
import type { Finding, Violation } from "../model.js";
import type { SeriesStatus } from "../policy/series-status.js";

/** Nagios plugin exit codes. */
export const NAGIOS = { ok: 0, warning: 1, critical: 2, unknown: 3 } as const;
const WORD = ["OK", "WARNING", "CRITICAL", "UNKNOWN"] as const;

/** How many violation messages the status text names before "(+N more)". */
const NAMED = 3;

/** The `<series>_last_drill` perfdata value: 0 pass or warn, 1 error, 2 fail (warn above 0, critical above 1). */
export const LAST_DRILL_VALUE = { pass: 0, warn: 0, error: 1, fail: 2 } as const;

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

/** What `check` knows when it prints. */
export interface NagiosInput {
  violations: readonly Violation[];
  statuses: readonly SeriesStatus[];
  /** Sources that could not be listed. */
  problems: readonly Finding[];
  now: Date;
  /** Target age of the newest verified backup of a source (ms), when set. */
  verifiedTarget: (source: string) => number | undefined;
  /** Whether the history's hash chain verifies (a broken chain is evidence no one can trust). */
  chain?: { ok: boolean; problem?: string };
}

/** The plugin status: CRITICAL for a critical violation or a broken chain, UNKNOWN for an unlisted source, WARNING for a warning. */
export function nagiosStatus(input: Pick<NagiosInput, "violations" | "problems" | "chain">): number {
  if (input.chain && !input.chain.ok) return NAGIOS.critical;
  if (input.violations.some((v) => v.severity === "critical")) return NAGIOS.critical;
  if (input.problems.length) return NAGIOS.unknown;
  if (input.violations.length) return NAGIOS.warning;
  return NAGIOS.ok;
}

/** The plugin line and exit code for a check's result. */
export function nagiosLine(input: NagiosInput): { line: string; code: number } {
  const { violations, statuses, problems, verifiedTarget, chain } = input;
  const crit = violations.filter((v) => v.severity === "critical");
  const warn = violations.filter((v) => v.severity === "warning");
  const code = nagiosStatus(input);
  const broken = chain && !chain.ok;

  const named = [
    ...(broken ? [`history chain does not verify: ${chain.problem ?? "unknown problem"}`] : []),
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
      broken && "history chain broken",
      problems.length && `${problems.length} source${problems.length === 1 ? "" : "s"} not listed`,
      violations.length &&
        `${violations.length} violation${violations.length === 1 ? "" : "s"} (${crit.length} critical)`,
    ]
      .filter(Boolean)
      .join(", ");
    const more = named.length > NAMED ? ` (+${named.length - NAMED} more)` : "";
    text = `${counts}: ${named.slice(0, NAMED).join("; ")}${more}`;
  }

  // any critical violation is CRITICAL, any warning WARNING: both thresholds are 0
  const perf: string[] = [
    `violations_critical=${crit.length};;0;0`,
    `violations_warning=${warn.length};0;;0`,
  ];
  // 1 verified, 0 broken: critical below 1
  if (chain) perf.push(`history_chain_ok=${chain.ok ? 1 : 0};;1:;0;1`);
  for (const s of statuses) {
    const label = perfLabel(s.source, s.series);
    if (s.newestAgeSeconds !== undefined)
      perf.push(`${label}_age=${s.newestAgeSeconds}s;;${secs(s.rpoSeconds)};0`);
    if (s.newestVerifiedBackupAt) {
      const age = Math.max(
        0,
        Math.round((input.now.getTime() - Date.parse(s.newestVerifiedBackupAt)) / 1000),
      );
      const target = verifiedTarget(s.source);
      perf.push(`${label}_verified_age=${age}s;${secs(target === undefined ? undefined : target / 1000)};;0`);
    }
    if (s.lastDrill && s.lastDrill.verdict in LAST_DRILL_VALUE) {
      const v = LAST_DRILL_VALUE[s.lastDrill.verdict as keyof typeof LAST_DRILL_VALUE];
      perf.push(`${label}_last_drill=${v};0;1;0;2`);
    }
    if (s.lastPassTotalMs !== undefined) {
      perf.push(
        `${label}_restore=${secs(s.lastPassTotalMs / 1000)}s;;${secs(s.rtoMs === undefined ? undefined : s.rtoMs / 1000)};0`,
      );
    }
  }
  return { line: `ATTEST ${WORD[code]} - ${plain(text)} | ${perf.join(" ")}`, code };
}
