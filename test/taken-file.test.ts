/**
 * Sandbox.takeFile in every runtime, on real sandboxes: what a process of the sandbox wrote (a
 * fetched dump, a decompressed archive) is moved where the sandbox still reads it but can no
 * longer change, replace or link it, so that Attest's later host-side reads of it cannot be
 * turned towards a host file by the backup's code.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ManagedRuntime } from "../src/runtimes/registry.js";
import type { Runtime, Sandbox } from "../src/runtimes/runtime.js";
import { VerifierError } from "../src/util/errors.js";
import { isRoot } from "../src/util/os-user.js";
import { sandboxRuntime, selectedRuntimes } from "./support/runtimes.js";

const work = mkdtempSync(join(tmpdir(), "attest-taken-"));
chmodSync(work, 0o711);

afterAll(() => rmSync(work, { recursive: true, force: true }));

describe.each(selectedRuntimes())("takeFile in the %s runtime", (runtime) => {
  let rt: Runtime | ManagedRuntime;
  let sandbox: Sandbox;
  const sh = (script: string, stdin?: string) =>
    sandbox.exec("sh", ["-c", script], {
      timeoutMs: 60_000,
      allowFailure: true,
      ...(stdin !== undefined ? { stdin } : {}),
    });

  beforeAll(async () => {
    rt = await sandboxRuntime(runtime as "local" | "docker", work, 256);
    sandbox = await rt.provision({
      pgMajor: 15,
      allowNewer: true,
      labels: { run: `taken${process.pid}`, source: "t", backup: "b" },
      mode: "empty",
      inputs: [],
    });
  }, 180_000);

  afterAll(async () => {
    await sandbox?.destroy();
  });

  it("moves a file out of reach: still read inside, no longer written, replaced or linked", async () => {
    const w = await sh(
      'umask 077 && mkdir -p "$HOME/f" && cat > "$HOME/f/dump" && cd "$HOME/f" && pwd -P',
      "bytes\n",
    );
    expect(w.code, w.stderrTail).toBe(0);
    const host = await sandbox.takeFile!(`${w.stdout.trim()}/dump`);
    expect(readFileSync(host, "utf8")).toBe("bytes\n");
    if (isRoot()) {
      const st = statSync(host);
      expect([st.uid, st.mode & 0o777]).toEqual([0, 0o640]);
    }
    const inside = sandbox.inputPath(host);
    expect((await sh(`cat "${inside}"`)).stdout).toBe("bytes\n");
    // the backup's code, running as the sandbox's user, cannot touch it
    for (const attempt of [
      `echo more >> "${inside}"`,
      `rm -f "${inside}"`,
      `ln -sf /etc/passwd "${inside}"`,
      `mv "${inside}" "${inside}.x"`,
      `chmod 666 "${inside}"`,
    ])
      expect((await sh(attempt)).code, attempt).not.toBe(0);
    expect(readFileSync(host, "utf8")).toBe("bytes\n");
    // nothing is left where it was written
    expect((await sh('test -e "$HOME/f/dump"')).code).not.toBe(0);
  });

  it("moves a directory of files; the sandbox cannot add one", async () => {
    const w = await sh(
      'umask 077 && mkdir -p "$HOME/d/x.dir" && cd "$HOME/d/x.dir" && echo t > toc.dat && echo 1 > 1.dat && pwd -P',
    );
    const host = await sandbox.takeFile!(w.stdout.trim());
    const inside = sandbox.inputPath(host);
    expect((await sh(`cat "${inside}/toc.dat" "${inside}/1.dat"`)).stdout).toBe("t\n1\n");
    expect((await sh(`echo x > "${inside}/2.dat"`)).code).not.toBe(0);
    expect((await sh(`ln -s /etc/passwd "${inside}/toc2.dat"`)).code).not.toBe(0);
  });

  it("refuses a link, and a path outside the sandbox's own directory", async () => {
    const w = await sh('mkdir -p "$HOME/l" && ln -s /etc/passwd "$HOME/l/dump" && cd "$HOME/l" && pwd -P');
    await expect(sandbox.takeFile!(`${w.stdout.trim()}/dump`)).rejects.toThrow(/link|not a regular file/);
    await expect(sandbox.takeFile!("/etc/passwd")).rejects.toBeInstanceOf(VerifierError);
  });
});
