/**
 * OCI calls with our own retries: transient failures (429, 5xx, network, a call that hangs)
 * are retried with jittered exponential backoff and each retry is logged; permanent ones
 * (400/401/404/409/412…) become a VerifierError that names the OCI service code.
 */
import { VerifierError } from "../../util/errors.js";
import type { Logger } from "../../util/log.js";
import { abortReason, type Clock, systemClock } from "../../util/retry.js";
import type { OciApi } from "./oci-api.js";

/** How hard to try. */
export interface RetryPolicy {
  maxAttempts: number;
  initialDelayMs: number;
  maxDelayMs: number;
  /** One HTTP call longer than this counts as a (transient) timeout. */
  callTimeoutMs: number;
}

/** Where retries are logged and what stops them. */
export interface RetryContext {
  logger: Logger;
  signal?: AbortSignal;
  clock?: Clock;
}

/** A failed OCI call, permanent or out of retries; `status`/`code` are OCI's. */
export class OciCallError extends VerifierError {
  constructor(
    message: string,
    readonly operation: string,
    readonly status: number | undefined,
    readonly code: string | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

interface SdkErrorShape {
  statusCode?: number;
  serviceCode?: string;
  message?: string;
  opcRequestId?: string | null;
  code?: string;
  cause?: unknown;
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

class CallTimeout extends Error {}

/** What went wrong, and whether another attempt may help. */
export function classifyOciError(err: unknown): {
  transient: boolean;
  status?: number;
  code?: string;
  text: string;
} {
  const e = (err ?? {}) as SdkErrorShape;
  if (err instanceof CallTimeout) return { transient: true, text: err.message };
  if (typeof e.statusCode === "number" && e.statusCode > 0) {
    const status = e.statusCode;
    const transient = status === 429 || status >= 500;
    const code = e.serviceCode || undefined;
    const text = `${status}${code ? ` ${code}` : ""}: ${e.message ?? ""}`.trim();
    return { transient, status, ...(code ? { code } : {}), text };
  }
  const cause = e.cause as SdkErrorShape | undefined;
  const netCode = [e.code, cause?.code].find((c) => c && NETWORK_CODES.has(c));
  const text = (err as Error)?.message ?? String(err);
  if (netCode || /fetch failed|socket hang up|network/i.test(text)) {
    return { transient: true, text: `network error${netCode ? ` ${netCode}` : ""}: ${text}` };
  }
  return { transient: false, text };
}

/** The permanent failure as the one line a record and an operator need. */
function permanentMessage(operation: string, c: ReturnType<typeof classifyOciError>): string {
  const base = `OCI ${operation} failed: ${c.text}`;
  if (c.status === 401)
    return `${base} — the API key was not accepted: the key, fingerprint, user or tenancy is wrong, or the key expired / was removed from the user (check the oci: settings)`;
  if (c.status === 404)
    return `${base} — the resource does not exist, or the user lacks an IAM policy for it (docs/oci-iam.md)`;
  return base;
}

function backoff(policy: RetryPolicy, attempt: number): number {
  const cap = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** (attempt - 1));
  // full jitter keeps many verifiers from retrying in lockstep against a throttled API
  return Math.round(cap / 2 + Math.random() * (cap / 2));
}

/** Runs one OCI call with retries; the logger gets a line per retry. */
export async function callOci<T>(
  operation: string,
  fn: () => Promise<T>,
  policy: RetryPolicy,
  ctx: RetryContext,
): Promise<T> {
  const clock = ctx.clock ?? systemClock;
  for (let attempt = 1; ; attempt++) {
    if (ctx.signal?.aborted) throw abortReason(ctx.signal);
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    try {
      // the SDK takes no AbortSignal: a hung or aborted call is abandoned, not cancelled
      const stop = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new CallTimeout(`no answer within ${policy.callTimeoutMs} ms`)),
          policy.callTimeoutMs,
        );
        onAbort = () => reject(abortReason(ctx.signal!));
        ctx.signal?.addEventListener("abort", onAbort, { once: true });
      });
      return await Promise.race([fn(), stop]);
    } catch (err) {
      if (ctx.signal?.aborted) throw abortReason(ctx.signal);
      const c = classifyOciError(err);
      if (!c.transient) {
        throw new OciCallError(permanentMessage(operation, c), operation, c.status, c.code, { cause: err });
      }
      if (attempt >= policy.maxAttempts) {
        throw new OciCallError(
          `OCI ${operation} still failing after ${attempt} attempts: ${c.text}`,
          operation,
          c.status,
          c.code,
          { cause: err },
        );
      }
      const delayMs = backoff(policy, attempt);
      ctx.logger.warn("OCI call failed, retrying", { operation, attempt, error: c.text, delayMs });
      await clock.sleep(delayMs, ctx.signal);
    } finally {
      clearTimeout(timer);
      if (onAbort) ctx.signal?.removeEventListener("abort", onAbort);
    }
  }
}

/** `api` with every call retried under `policy`. */
export function retryingApi(api: OciApi, policy: RetryPolicy, ctx: RetryContext): OciApi {
  const run = <T>(operation: string, fn: () => Promise<T>) => callOci(operation, fn, policy, ctx);
  return {
    ...(api.region ? { region: api.region } : {}),
    listVolumeBackups: (q) => run("ListVolumeBackups", () => api.listVolumeBackups(q)),
    listVolumes: (q) => run("ListVolumes", () => api.listVolumes(q)),
    getVolume: (id) => run("GetVolume", () => api.getVolume(id)),
    createVolume: (d) => run("CreateVolume", () => api.createVolume(d)),
    deleteVolume: (id) => run("DeleteVolume", () => api.deleteVolume(id)),
    listAvailableDevices: (id) => run("ListInstanceDevices", () => api.listAvailableDevices(id)),
    attachVolume: (d) => run("AttachVolume", () => api.attachVolume(d)),
    getVolumeAttachment: (id) => run("GetVolumeAttachment", () => api.getVolumeAttachment(id)),
    detachVolume: (id) => run("DetachVolume", () => api.detachVolume(id)),
    listVolumeAttachments: (q) => run("ListVolumeAttachments", () => api.listVolumeAttachments(q)),
  };
}
