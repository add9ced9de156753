/** `${ENV}` and `${file:/path}` references inside configuration strings. */
import { readFileSync } from "node:fs";
import { registerSecret } from "../util/redact.js";

/** A reference that could not be resolved, with the key path it sits at. */
export class UnresolvedReferenceError extends Error {
  override readonly name = "ConfigReferenceError";
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

const REF = /\$\{([^}]*)\}/g;
const SECRET_KEY = /pass|secret|token|key|auth|credential|webhook|url/i;

/** Replaces every reference in every string of `value`, walking objects and arrays. */
export function resolveReferences(value: unknown, path = "", env: NodeJS.ProcessEnv = process.env): unknown {
  if (typeof value === "string") return resolveString(value, path, env);
  if (Array.isArray(value)) return value.map((v, i) => resolveReferences(v, `${path}[${i}]`, env));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = resolveReferences(v, path ? `${path}.${k}` : k, env);
    return out;
  }
  return value;
}

function resolveString(text: string, path: string, env: NodeJS.ProcessEnv): string {
  const key = path.split(/[.[]/).pop() ?? "";
  return text.replace(REF, (_m, inner: string) => {
    if (inner.startsWith("file:")) {
      const file = inner.slice(5);
      let v: string;
      try {
        v = readFileSync(file, "utf8").replace(/\r?\n$/, "");
      } catch (err) {
        throw new UnresolvedReferenceError(
          path,
          `cannot read secret file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`,
        );
      }
      registerSecret(v);
      return v;
    }
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(inner))
      throw new UnresolvedReferenceError(path, `"\${${inner}}" is not a valid reference`);
    const v = env[inner];
    if (v === undefined) throw new UnresolvedReferenceError(path, `environment variable ${inner} is not set`);
    if (SECRET_KEY.test(key)) registerSecret(v);
    return v;
  });
}
