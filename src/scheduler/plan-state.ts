/** What the scheduler remembers about each plan across restarts: one JSON file, written atomically. */
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";

/** A finished run of a plan. */
export interface PlanRunRecord {
  /** Fire time the run was for. */
  slot: string;
  runId?: string;
  startedAt: string;
  finishedAt: string;
  /** pass | warn | fail | error | skipped */
  status: string;
  detail: string;
}

/** One plan's remembered state. */
export interface PlanState {
  /** When the service first scheduled this plan: nothing before it can have been missed. */
  firstSeenAt: string;
  /** The latest fire time that was run to completion or deliberately skipped; catch-up counts from here. */
  handledThrough?: string;
  /** The run in progress (left behind by a killed service: then it was not handled). */
  running?: { slot: string; startedAt: string };
  lastRun?: PlanRunRecord;
}

interface StateFile {
  version: 1;
  plans: Record<string, PlanState>;
}

/** The file `<dir>/scheduler-state.json`. */
export class PlanStateStore {
  readonly path: string;
  #plans: Record<string, PlanState>;

  constructor(dir: string) {
    this.path = join(dir, "scheduler-state.json");
    this.#plans = PlanStateStore.#read(this.path);
  }

  static #read(path: string): Record<string, PlanState> {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new Error(`cannot read scheduler state ${path}`, { cause: err });
    }
    try {
      const doc = JSON.parse(text) as StateFile;
      if (doc.version !== 1 || typeof doc.plans !== "object" || doc.plans === null)
        throw new Error("bad shape");
      return doc.plans;
    } catch (err) {
      throw new Error(`${path} is not an Attest scheduler state file; move it away to start afresh`, {
        cause: err,
      });
    }
  }

  /** A plan's state (a copy). */
  get(name: string): PlanState | undefined {
    const s = this.#plans[name];
    return s ? structuredClone(s) : undefined;
  }

  /** Every plan's state (a copy). */
  all(): Record<string, PlanState> {
    return structuredClone(this.#plans);
  }

  /** Changes one plan's state and writes the file (temp file, fsync, rename). */
  update(name: string, change: (s: PlanState | undefined) => PlanState): PlanState {
    const next = change(this.get(name));
    this.#plans[name] = next;
    this.#write();
    return structuredClone(next);
  }

  #write(): void {
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    const doc: StateFile = { version: 1, plans: this.#plans };
    const fd = openSync(tmp, "w", 0o640);
    try {
      writeSync(fd, `${JSON.stringify(doc, null, 2)}\n`);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.path);
  }
}
