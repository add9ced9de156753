/**
 * Maps a report's evidence to the controls of compliance frameworks. The mapping is data: one
 * JSON file per framework in this folder (control id, a one-line summary in Attest's own
 * words, and the evidence kinds that answer it), so adding a framework is adding one file.
 */
import type { FrameworkId } from "../../evidence/evidence-config.js";
import type { HistoryRecord } from "../../history/history-record.js";
import type { ReportModel } from "../report-model.js";
import dora from "./dora.json" with { type: "json" };
import {
  assessEvidence,
  type ControlStatus,
  EVIDENCE_KINDS,
  type EvidenceAssessment,
  type EvidenceKind,
} from "./evidence-kinds.js";
import hipaa from "./hipaa.json" with { type: "json" };
import iso27001 from "./iso27001.json" with { type: "json" };
import nist from "./nist-800-53.json" with { type: "json" };
import soc2 from "./soc2.json" with { type: "json" };

/** A framework file's content. */
export interface FrameworkFile {
  id: string;
  name: string;
  controls: Array<{ id: string; title: string; asks: string; evidence: string[] }>;
}

const FILES: Record<FrameworkId, FrameworkFile> = {
  iso27001,
  soc2,
  "nist-800-53": nist,
  hipaa,
  dora,
};

/** One control, judged for the period. */
export interface ControlResult {
  id: string;
  title: string;
  asks: string;
  status: ControlStatus;
  evidence: EvidenceAssessment[];
  /** Every history row the evidence rests on, in order. */
  rows: number[];
}

/** One framework's section of a report. */
export interface FrameworkSection {
  id: string;
  name: string;
  controls: ControlResult[];
}

/** The framework file of `id`; throws when it names an evidence kind Attest does not know. */
export function framework(id: FrameworkId): FrameworkFile {
  const f = FILES[id];
  for (const c of f.controls)
    for (const k of c.evidence)
      if (!(EVIDENCE_KINDS as readonly string[]).includes(k))
        throw new Error(`framework ${id}, control ${c.id}: unknown evidence kind "${k}"`);
  return f;
}

/** A control is not met when any of its evidence is not; without proof of every kind, no evidence. */
export function combineStatus(parts: readonly ControlStatus[]): ControlStatus {
  if (parts.includes("not-met")) return "not-met";
  if (parts.length === 0 || parts.includes("no-evidence")) return "no-evidence";
  return "met";
}

/** The control sections of `ids` for the report's period. */
export function controlSections(
  ids: readonly FrameworkId[],
  model: ReportModel,
  history: readonly HistoryRecord[],
): FrameworkSection[] {
  const cache = new Map<EvidenceKind, EvidenceAssessment>();
  const assess = (k: EvidenceKind) => {
    let a = cache.get(k);
    if (!a) {
      a = assessEvidence(k, model, history);
      cache.set(k, a);
    }
    return a;
  };
  return ids.map((id) => {
    const f = framework(id);
    return {
      id: f.id,
      name: f.name,
      controls: f.controls.map((c) => {
        const evidence = c.evidence.map((k) => assess(k as EvidenceKind));
        return {
          id: c.id,
          title: c.title,
          asks: c.asks,
          status: combineStatus(evidence.map((e) => e.status)),
          evidence,
          rows: [...new Set(evidence.flatMap((e) => e.rows))].sort((a, b) => a - b),
        };
      }),
    };
  });
}

/** The label of a control status: MET, NOT MET, NO EVIDENCE. */
export const controlLabel = (s: ControlStatus): string => s.replace("-", " ").toUpperCase();
