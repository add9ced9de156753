/** What alerting remembers between runs, in a JSON file written atomically (temp file + rename). */
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import type { Severity } from "../../model.js";
import { writeAtomic } from "../mail/outbox.js";

/** An ongoing condition that was alerted. */
export interface AlertCondition {
  key: string;
  /** What it is about: a violation, a drill that failed, a source that could not be listed. */
  kind: "violation" | "drill" | "finding";
  source: string;
  series?: string;
  rule?: string;
  severity: Severity;
  message: string;
  /** Changes when the condition changes in a way worth a new alert (escalation, another backup). */
  fingerprint: string;
  firstSeen: string;
  lastAlerted: string;
}

/** A webhook payload that could not be delivered yet. */
export interface PendingWebhook {
  /** Which webhook it is for ({@link webhookId}); absent in older state files: the first one. */
  hook?: string;
  body: Record<string, unknown>;
  queuedAt: string;
  attempts: number;
  lastError: string;
}

/** The state file's content. */
export interface AlertState {
  version: 1;
  conditions: Record<string, AlertCondition>;
  pendingWebhooks: PendingWebhook[];
  /** Consecutive runs whose newest drill of a series (`source/series`) was `error`. */
  errorStreaks?: Record<string, number>;
}

/** The state file of a reports folder. */
export function alertStateFile(reportsDir: string): string {
  return join(reportsDir, "alert-state.json");
}

/** An empty state. */
export const emptyAlertState = (): AlertState => ({ version: 1, conditions: {}, pendingWebhooks: [] });

/** Reads the state; a missing file is an empty state, an unreadable one is set aside and replaced. */
export function loadAlertState(file: string): { state: AlertState; problem?: string } {
  if (!existsSync(file)) return { state: emptyAlertState() };
  try {
    const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<AlertState>;
    if (parsed.version !== 1 || typeof parsed.conditions !== "object" || parsed.conditions === null) {
      throw new Error("unknown format");
    }
    return {
      state: {
        version: 1,
        conditions: parsed.conditions,
        pendingWebhooks: parsed.pendingWebhooks ?? [],
        errorStreaks: parsed.errorStreaks ?? {},
      },
    };
  } catch (err) {
    // keep the damaged file for a person; alerts start over (at worst one repeated alert each)
    const aside = `${file}.corrupt-${Date.now()}`;
    renameSync(file, aside);
    return {
      state: emptyAlertState(),
      problem: `alert state ${file} was unreadable (${(err as Error).message}); moved to ${aside}`,
    };
  }
}

/** Writes the state atomically. */
export function saveAlertState(file: string, state: AlertState): void {
  mkdirSync(dirname(file), { recursive: true });
  writeAtomic(file, `${JSON.stringify(state, null, 2)}\n`);
}
