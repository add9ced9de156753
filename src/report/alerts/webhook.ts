/** Alert webhooks: a JSON POST with a `text` field that Slack, Teams or Mattermost receivers show. */
import { describeError } from "../../util/errors.js";
import { redact } from "../../util/redact.js";
import type { AlertsConfig } from "./alerts-config.js";

/** Posts one JSON body; resolves to an error text, or undefined when the receiver took it (2xx). */
export async function postWebhook(
  hook: NonNullable<AlertsConfig["webhook"]>,
  body: Record<string, unknown>,
): Promise<string | undefined> {
  try {
    const res = await fetch(hook.url, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "attest", ...hook.headers },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(hook.timeout),
    });
    const reply = await res.text().catch(() => "");
    if (!res.ok) return `HTTP ${res.status}${reply ? `: ${reply.slice(0, 200)}` : ""}`;
    return undefined;
  } catch (err) {
    return redact(describeError(err));
  }
}
