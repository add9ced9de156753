/** Logs and progress on standard error: a live line on a TTY, JSON lines otherwise. */
import { redact } from "./redact.js";

/** Log levels, quietest last. */
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
/** A log level. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Where logs go; replaceable in tests. */
export interface LogSink {
  write(text: string): void;
  readonly isTTY: boolean;
}

/** A structured logger. */
export interface Logger {
  log(level: LogLevel, msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  debug(msg: string, fields?: Record<string, unknown>): void;
  /** Shows what a long task is doing now; one live line per key on a TTY. */
  progress(key: string, text: string): void;
  /** Removes a key's live line. */
  done(key: string): void;
}

/** Options of createLogger. */
export interface LoggerOptions {
  level?: LogLevel;
  sink?: LogSink;
  /** Force JSON lines even on a TTY. */
  json?: boolean;
}

/** Creates a logger writing to standard error (or the given sink). */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const sink: LogSink = opts.sink ?? {
    write: (t) => process.stderr.write(t),
    isTTY: Boolean(process.stderr.isTTY),
  };
  const min = LOG_LEVELS.indexOf(opts.level ?? (process.env.ATTEST_LOG_LEVEL as LogLevel) ?? "info");
  const human = sink.isTTY && !opts.json;
  const live = new Map<string, string>();
  const lastProgressLog = new Map<string, number>();
  let liveShown = false;

  const clearLive = () => {
    if (human && liveShown) {
      sink.write("\r\x1b[2K");
      liveShown = false;
    }
  };
  const drawLive = () => {
    if (!human || live.size === 0) return;
    const width = Math.max(40, (process.stderr.columns ?? 120) - 1);
    const line = [...live.values()].join("  ·  ").slice(0, width);
    sink.write(`\r\x1b[2K${line}`);
    liveShown = true;
  };

  const log = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => {
    if (LOG_LEVELS.indexOf(level) < (min < 0 ? 1 : min)) return;
    if (human) {
      clearLive();
      const kv = fields
        ? Object.entries(fields)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${typeof v === "string" ? v : JSON.stringify(v)}`)
            .join(" ")
        : "";
      const time = new Date().toISOString().slice(11, 19);
      sink.write(redact(`${time} ${level.padEnd(5)} ${msg}${kv ? ` ${kv}` : ""}`) + "\n");
      drawLive();
    } else {
      sink.write(redact(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })) + "\n");
    }
  };

  return {
    log,
    info: (m, f) => log("info", m, f),
    warn: (m, f) => log("warn", m, f),
    error: (m, f) => log("error", m, f),
    debug: (m, f) => log("debug", m, f),
    progress(key, text) {
      if (human) {
        live.set(key, redact(`${key}: ${text}`));
        clearLive();
        drawLive();
        return;
      }
      // without a TTY, progress becomes a structured log line at most every 10 s per key
      const now = Date.now();
      if (now - (lastProgressLog.get(key) ?? 0) < 10_000) return;
      lastProgressLog.set(key, now);
      log("info", "progress", { task: key, status: text });
    },
    done(key) {
      lastProgressLog.delete(key);
      if (!live.delete(key)) return;
      clearLive();
      drawLive();
    },
  };
}

/** A logger that drops everything (for unit tests of pure code). */
export const silentLogger: Logger = {
  log() {},
  info() {},
  warn() {},
  error() {},
  debug() {},
  progress() {},
  done() {},
};
