/** Alert webhooks: a JSON POST with a `text` field that Slack, Teams or Mattermost receivers show. */
import { setTimeout as sleep } from "node:timers/promises";
import { describeError } from "../../util/errors.js";
import { redact } from "../../util/redact.js";
import type { AlertsConfig } from "./alerts-config.js";

/** Tries per post within one run, and the first wait (doubled after each failed try). */
export const WEBHOOK_TRIES = 3;
const FIRST_BACKOFF_MS = 500;

/** One try: an error text and whether another try may help, or undefined when the receiver took it (2xx). */
async function postOnce(
  hook: NonNullable<AlertsConfig["webhook"]>,
  body: Record<string, unknown>,
): Promise<{ error: string; retry: boolean } | undefined> {
  try {
    const res = await fetch(hook.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "attest", ...hook.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(hook.timeout),
    });
    const reply = await res.text().catch(() => "");
    if (res.ok) return undefined;
    // a receiver that refuses the request (4xx other than 408/429) will refuse it again
    const retry = res.status >= 500 || res.status === 408 || res.status === 429;
    return { error: `HTTP ${res.status}${reply ? `: ${reply.slice(0, 200)}` : ""}`, retry };
  } catch (err) {
    return { error: redact(describeError(err)), retry: true };
  }
}

/**
 * Posts one JSON body, retrying a failure that may pass (network, 5xx, 408, 429) up to
 * {@link WEBHOOK_TRIES} times with doubling waits; resolves to an error text, or undefined.
 */
export async function postWebhook(
  hook: NonNullable<AlertsConfig["webhook"]>,
  body: Record<string, unknown>,
  opts: { backoffMs?: number } = {},
): Promise<string | undefined> {
  let wait = opts.backoffMs ?? FIRST_BACKOFF_MS;
  for (let attempt = 1; ; attempt++) {
    const failed = await postOnce(hook, body);
    if (!failed) return undefined;
    if (!failed.retry || attempt >= WEBHOOK_TRIES) {
      return attempt > 1 ? `${failed.error} (after ${attempt} tries)` : failed.error;
    }
    await sleep(wait);
    wait *= 2;
  }
}
