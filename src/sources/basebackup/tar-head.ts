/** Reading small members (backup_label, PG_VERSION) from the start of a tar stream. */

/** One member found in a tar head. */
export interface TarMember {
  name: string;
  size: number;
  type: string;
  /** Content, when it lies wholly inside the head. */
  content?: Buffer;
}

function octal(buf: Buffer, from: number, len: number): number {
  // GNU base-256 for large sizes: high bit of the first byte set
  if (buf[from]! & 0x80) {
    let v = 0;
    for (let i = from + 1; i < from + len; i++) v = v * 256 + buf[i]!;
    return v;
  }
  const s = buf
    .toString("latin1", from, from + len)
    .replace(/\0.*$/s, "")
    .trim();
  return s ? Number.parseInt(s, 8) : 0;
}

/** Walks the members of a (possibly cut) tar head, stopping at the end of the buffer. */
export function tarMembers(buf: Buffer): TarMember[] {
  const out: TarMember[] = [];
  let pos = 0;
  let longName: string | undefined;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    if (h.toString("latin1", 257, 262) !== "ustar")
      throw new Error(`not a tar archive (no ustar header at offset ${pos})`);
    const size = octal(h, 124, 12);
    const type = String.fromCharCode(h[156] || 48);
    const prefix = h.toString("utf8", 345, 500).replace(/\0.*$/s, "");
    let name = h.toString("utf8", 0, 100).replace(/\0.*$/s, "");
    if (prefix) name = `${prefix}/${name}`;
    const dataAt = pos + 512;
    const content = dataAt + size <= buf.length ? buf.subarray(dataAt, dataAt + size) : undefined;
    if (type === "L") {
      longName = content?.toString("utf8").replace(/\0.*$/s, "");
    } else {
      out.push({ name: longName ?? name, size, type, ...(content ? { content } : {}) });
      longName = undefined;
    }
    pos = dataAt + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The texts of backup_label and PG_VERSION among the first members of a base tar. */
export interface HeadFiles {
  labelText?: string;
  pgVersionText?: string;
}

/**
 * backup_label and PG_VERSION from the head of the base tar named `base` (pg_basebackup writes
 * them first); a missing label is added to `problems`.
 */
export function headFiles(head: Buffer, base: string, problems: string[]): HeadFiles {
  const members = tarMembers(head);
  const text = (name: string) => members.find((m) => m.name === name)?.content?.toString("utf8");
  const files = { labelText: text("backup_label"), pgVersionText: text("PG_VERSION") };
  if (!files.labelText) problems.push(`${base} has no backup_label near its start`);
  return files;
}
