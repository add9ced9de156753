/** Error helpers shared by every stage. */

/** Turns anything thrown into an Error. */
export function coerceError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(typeof err === "string" ? err : JSON.stringify(err));
}

/** The verifier itself could not do its job (maps to verdict `error`). */
export class VerifierError extends Error {
  override readonly name = "VerifierError";
}

/** The backup is bad (maps to verdict `fail`). */
export class BackupDefectError extends Error {
  override readonly name = "BackupDefectError";
}

/** Bad usage or configuration (exit code 2). */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** One line describing an error and its causes, for records and logs. */
export function describeError(err: unknown): string {
  const parts: string[] = [];
  let cur: unknown = err;
  for (let depth = 0; cur !== undefined && depth < 4; depth++) {
    const e = coerceError(cur);
    if (!parts.some((p) => p.includes(e.message))) parts.push(e.message);
    cur = e.cause;
  }
  return parts.join(": ").replace(/\s+/g, " ").trim();
}

/**
 * Runs cleanups in reverse registration order; every cleanup runs, the first error wins.
 */
export class Cleanups {
  readonly #steps: Array<{ name: string; fn: () => Promise<void> | void }> = [];

  /** Registers a cleanup step. */
  add(name: string, fn: () => Promise<void> | void): void {
    this.#steps.push({ name, fn });
  }

  /** Runs all steps, newest first; throws the first failure after all ran. */
  async run(): Promise<void> {
    let first: Error | undefined;
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()!;
      try {
        await step.fn();
      } catch (err) {
        first ??= new Error(`cleanup ${step.name} failed: ${describeError(err)}`, { cause: err });
      }
    }
    if (first) throw first;
  }
}
