/** Listing every configured source: backups plus static findings. No restore. */
import type { Config, PoliciesConfig, SourceConfig } from "../config/schema.js";
import type { Backup, Finding } from "../model.js";
import { createSource } from "../sources/registry.js";
import type { Source } from "../sources/source.js";
import { describeError, UsageError } from "../util/errors.js";
import type { Logger } from "../util/log.js";

/** One source's inventory. */
export interface SourceInventory {
  config: SourceConfig;
  source: Source;
  backups: Backup[];
  findings: Finding[];
  /** Set when the source could not be listed at all. */
  error?: string;
}

/** The configured sources named (all when `names` is empty); unknown names are a usage error. */
export function pickSources(config: Config, names: readonly string[]): SourceConfig[] {
  if (names.length === 0) return [...config.sources];
  const known = new Set(config.sources.map((s) => s.name));
  const unknown = names.filter((n) => !known.has(n));
  if (unknown.length) {
    throw new UsageError(`unknown source ${unknown.join(", ")} (configured: ${[...known].join(", ")})`);
  }
  return config.sources.filter((s) => names.includes(s.name));
}

/** Lists and inspects each source; a source that cannot be listed becomes a critical finding. */
export async function inventorySources(
  sources: readonly SourceConfig[],
  logger: Logger,
  signal?: AbortSignal,
): Promise<SourceInventory[]> {
  const out: SourceInventory[] = [];
  for (const config of sources) {
    const source = createSource(config);
    const ctx = { logger, ...(signal ? { signal } : {}) };
    try {
      const backups = await source.list(ctx);
      const findings = source.inspect ? await source.inspect(backups, ctx) : [];
      out.push({ config, source, backups, findings });
    } catch (err) {
      const message = `cannot list source ${config.name}: ${describeError(err)}`;
      logger.error(message, { source: config.name });
      out.push({
        config,
        source,
        backups: [],
        findings: [{ source: config.name, kind: "list_failed", severity: "critical", message }],
        error: message,
      });
    }
  }
  return out;
}

/** Top-level policies merged with a source's overrides. */
export function policiesFor(config: Config, source: SourceConfig): PoliciesConfig {
  const own = source.policies ?? {};
  return {
    ...config.policies,
    ...own,
    ...(config.policies.retention || own.retention
      ? { retention: { ...config.policies.retention, ...own.retention } }
      : {}),
  };
}
