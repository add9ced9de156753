/**
 * The outbox: mail that could not be sent waits here as .eml plus its envelope, and is sent by
 * the next run. With `transport: file` the outbox itself is the destination (air-gapped sites).
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** Who a queued message goes to. */
export interface Envelope {
  from: string;
  to: string[];
}

/** What the outbox keeps beside a queued message. */
export interface QueuedMeta {
  id: string;
  envelope: Envelope;
  subject: string;
  queuedAt: string;
  attempts: number;
  lastError: string;
}

/** A queued message. */
export interface QueuedMail {
  meta: QueuedMeta;
  raw: Buffer;
}

/** Writes a file via a temporary name and a rename, so readers never see half of it. */
export function writeAtomic(file: string, data: string | Buffer): void {
  const tmp = `${file}.${process.pid}.${randomBytes(3).toString("hex")}.tmp`;
  writeFileSync(tmp, data, { mode: 0o640 });
  renameSync(tmp, file);
}

/** A unique, sortable file name stem. */
export function mailId(now = new Date()): string {
  return `${now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z")}-${randomBytes(4).toString("hex")}`;
}

/** The outbox folder. */
export class Outbox {
  readonly #pending: string;

  constructor(readonly dir: string) {
    this.#pending = join(dir, "pending");
  }

  /** Queues a message for a later attempt; returns its id. */
  enqueue(raw: Buffer, envelope: Envelope, subject: string, error: string, now = new Date()): string {
    mkdirSync(this.#pending, { recursive: true });
    const id = mailId(now);
    const meta: QueuedMeta = {
      id,
      envelope,
      subject,
      queuedAt: now.toISOString(),
      attempts: 1,
      lastError: error,
    };
    // the message first, its envelope last: an entry without envelope is incomplete and ignored
    writeAtomic(join(this.#pending, `${id}.eml`), raw);
    writeAtomic(join(this.#pending, `${id}.json`), `${JSON.stringify(meta, null, 2)}\n`);
    return id;
  }

  /** Queued messages, oldest first. */
  pending(): QueuedMail[] {
    if (!existsSync(this.#pending)) return [];
    const out: QueuedMail[] = [];
    for (const f of readdirSync(this.#pending)
      .filter((n) => n.endsWith(".json"))
      .sort()) {
      const id = f.slice(0, -5);
      try {
        const meta = JSON.parse(readFileSync(join(this.#pending, f), "utf8")) as QueuedMeta;
        out.push({ meta, raw: readFileSync(join(this.#pending, `${id}.eml`)) });
      } catch {
        // unreadable entries stay on disk for a person to look at
      }
    }
    return out;
  }

  /** Records another failed attempt. */
  failed(meta: QueuedMeta, error: string): void {
    const next = { ...meta, attempts: meta.attempts + 1, lastError: error };
    writeAtomic(join(this.#pending, `${meta.id}.json`), `${JSON.stringify(next, null, 2)}\n`);
  }

  /** Removes a message that was sent. */
  sent(id: string): void {
    rmSync(join(this.#pending, `${id}.json`), { force: true });
    rmSync(join(this.#pending, `${id}.eml`), { force: true });
  }

  /** Writes a message as a final .eml (the file transport); returns its path. */
  deliverFile(raw: Buffer, now = new Date()): string {
    mkdirSync(this.dir, { recursive: true });
    const file = join(this.dir, `${mailId(now)}.eml`);
    writeAtomic(file, raw);
    return file;
  }
}
