/** `pgbackrest verify --output=text` (read-only: checksums of every backup file and WAL segment) into findings. */
import type { Finding } from "../../model.js";

/** Findings from verify's text output; `checked` says what it covered. */
export function verifyFindings(
  text: string,
  ctx: { source: string; stanza: string },
): { findings: Finding[]; summary: string } {
  const findings: Finding[] = [];
  const base = { source: ctx.source, series: ctx.stanza };
  const lines = text.split("\n").map((l) => l.trim());
  let walChecked = 0;
  let backupsChecked = 0;
  let filesChecked = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const counts = lines[i + 1] ?? "";
    const bad = /missing: (\d+), checksum invalid: (\d+), size invalid: (\d+), other: (\d+)/.exec(counts);
    const badText = bad?.slice(1).some((n) => n !== "0") ? counts : undefined;
    const arch = /^archiveId: (\S+), total WAL checked: (\d+), total valid WAL: (\d+)/.exec(line);
    if (arch) {
      walChecked += Number(arch[2]);
      if (arch[2] !== arch[3] || badText)
        findings.push({
          ...base,
          kind: "wal_invalid",
          severity: "critical",
          message: `pgbackrest verify: archive ${arch[1]}: ${Number(arch[2]) - Number(arch[3])} of ${arch[2]} WAL files invalid (${counts})`,
        });
      continue;
    }
    const bk = /^backup: (\S+), status: (\S+), total files checked: (\d+), total valid files: (\d+)/.exec(
      line,
    );
    if (bk) {
      backupsChecked++;
      filesChecked += Number(bk[3]);
      if (bk[2] !== "valid" || badText)
        findings.push({
          ...base,
          backupId: bk[1]!,
          kind: "backup_invalid",
          severity: "critical",
          message: `pgbackrest verify: backup ${bk[1]} is ${bk[2]}: ${Number(bk[3]) - Number(bk[4])} of ${bk[3]} files invalid (${counts})`,
        });
    }
  }
  const summary = `pgbackrest verify checked ${backupsChecked} backups (${filesChecked} files) and ${walChecked} WAL files against their checksums`;
  return { findings, summary };
}
