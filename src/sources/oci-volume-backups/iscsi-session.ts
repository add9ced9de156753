/**
 * iSCSI attachments: after OCI reports ATTACHED, the instance itself must log in to the
 * target (unless the Oracle Cloud Agent does it); before detaching, log out. These are the
 * commands the OCI console shows for an attachment. Not run against an emulator: its
 * target addresses are documentation values, and nothing may reach beyond loopback.
 */
import { isIPv4 } from "node:net";
import { VerifierError } from "../../util/errors.js";
import { runProcess } from "../../util/process.js";

/** An iSCSI target as the attachment describes it. */
export interface IscsiTarget {
  iqn: string;
  ipv4: string;
  port: number;
}

/** The target of an attachment, validated before any of it reaches a command line. */
export function iscsiTargetOf(att: { iqn?: string; ipv4?: string; port?: number }): IscsiTarget {
  const { iqn, ipv4, port } = att;
  if (!iqn || !/^iqn\.\d{4}-\d{2}\.[a-z0-9.-]+(:[A-Za-z0-9.:_-]+)?$/.test(iqn))
    throw new VerifierError(`the attachment has no valid iSCSI IQN (${String(iqn)})`);
  if (!ipv4 || !isIPv4(ipv4))
    throw new VerifierError(`the attachment has no valid iSCSI address (${String(ipv4)})`);
  if (!port || !Number.isInteger(port) || port < 1 || port > 65535)
    throw new VerifierError(`the attachment has no valid iSCSI port (${String(port)})`);
  return { iqn, ipv4, port };
}

async function iscsiadm(args: string[], allowFailure = false): Promise<void> {
  const r = await runProcess("iscsiadm", args, { timeoutMs: 120_000, allowFailure: true });
  if (r.code !== 0 && !allowFailure) {
    throw new VerifierError(`iscsiadm ${args.join(" ")} failed: ${r.stderrTail || `exit ${r.code}`}`);
  }
}

/** Registers the node and logs in (iscsiadm, as root). */
export async function iscsiLogin(t: IscsiTarget): Promise<void> {
  const portal = `${t.ipv4}:${t.port}`;
  await iscsiadm(["-m", "node", "-o", "new", "-T", t.iqn, "-p", portal]);
  await iscsiadm(["-m", "node", "-o", "update", "-T", t.iqn, "-n", "node.startup", "-v", "manual"]);
  await iscsiadm(["-m", "node", "-T", t.iqn, "-p", portal, "-l"]);
}

/** Logs out and forgets the node; a session already gone is fine. */
export async function iscsiLogout(t: IscsiTarget): Promise<void> {
  const portal = `${t.ipv4}:${t.port}`;
  await iscsiadm(["-m", "node", "-T", t.iqn, "-p", portal, "-u"], true);
  await iscsiadm(["-m", "node", "-o", "delete", "-T", t.iqn, "-p", portal], true);
}
