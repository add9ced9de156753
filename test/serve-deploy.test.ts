/** The deployment examples in docker/: the Kubernetes CronJob, compose, systemd units, Dockerfile. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { parseConfig } from "../src/config/load.js";
import { parseDuration } from "../src/util/duration.js";
import { ROOT } from "./support/cli.js";

const DOCKER = join(ROOT, "docker");
const dir = mkdtempSync(join(tmpdir(), "attest-deploy-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], o);

describe("deployment examples", () => {
  const docs = parseAllDocuments(readFileSync(join(DOCKER, "k8s", "cronjob.yaml"), "utf8"));

  it("k8s/cronjob.yaml parses, and its CronJob has every field Kubernetes requires", () => {
    for (const d of docs) expect(d.errors).toEqual([]);
    const objects = docs.map((d) => d.toJS() as Obj);
    const cron = objects.find((o) => o.kind === "CronJob");
    expect(cron).toBeDefined();
    expect(cron!.apiVersion).toBe("batch/v1");
    expect(at(cron, "metadata", "name")).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    const schedule = at(cron, "spec", "schedule");
    expect(typeof schedule).toBe("string");
    expect((schedule as string).split(/\s+/)).toHaveLength(5);
    const pod = at(cron, "spec", "jobTemplate", "spec", "template", "spec") as Obj;
    expect(["Never", "OnFailure"]).toContain(pod.restartPolicy);
    const container = at(pod, "containers", 0) as Obj;
    expect(typeof container.name).toBe("string");
    expect(typeof container.image).toBe("string");
    const argv = [...(container.command as string[]), ...((container.args as string[]) ?? [])];
    expect(argv).toEqual(expect.arrayContaining(["audit", "--config", "/etc/attest/attest.yml"]));

    // config from the ConfigMap, secrets from the Secret (as env and as a file)
    const volumes = pod.volumes as Obj[];
    const mounts = container.volumeMounts as Obj[];
    const configVolume = volumes.find((v) => at(v, "configMap", "name") === "attest-config");
    expect(mounts.find((m) => m.name === configVolume?.name)?.mountPath).toBe("/etc/attest");
    const secretVolume = volumes.find((v) => at(v, "secret", "secretName") === "attest-secrets");
    expect(mounts.some((m) => m.name === secretVolume?.name)).toBe(true);
    for (const m of mounts) expect(volumes.map((v) => v.name)).toContain(m.name);
    const configMap = objects.find((o) => o.kind === "ConfigMap");
    expect(configMap).toMatchObject({ apiVersion: "v1", metadata: { name: "attest-config" } });
    // the SMTP password is a file of the Secret's volume (deploy-manifests.test.ts: no secret in env)
    const secretDir = mounts.find((m) => m.name === secretVolume?.name)?.mountPath;
    expect(at(configMap, "data", "attest.yml")).toContain(`\${file:${secretDir}/smtp-password}`);
    // what bubblewrap needs to confine local sandboxes inside the pod (docs/security.md)
    expect(pod.hostUsers).toBe(false);
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      seccompProfile: { type: "Unconfined" },
      procMount: "Unmasked",
    });
  });

  it("the ConfigMap's attest.yml is a valid Attest configuration", () => {
    const configMap = docs.map((d) => d.toJS() as Obj).find((o) => o.kind === "ConfigMap")!;
    writeFileSync(join(dir, "smtp-password"), "secret-value\n");
    const text = (at(configMap, "data", "attest.yml") as string)
      .replaceAll("/backup/postgres", dir)
      .replaceAll("/run/secrets/attest", dir);
    const cfg = parseConfig(text, join(dir, "attest.yml"), {});
    expect(cfg.sandbox.runtime).toBe("local");
  });

  it("compose.yml runs `attest serve` with host networking, the Docker socket and a stop grace above the shutdown grace", () => {
    const compose = parse(readFileSync(join(DOCKER, "compose.yml"), "utf8")) as Obj;
    const svc = at(compose, "services", "attest") as Obj;
    expect(svc.command).toEqual(["serve", "--config", "/etc/attest/attest.yml"]);
    expect(svc.network_mode).toBe("host");
    expect(svc.volumes).toEqual(expect.arrayContaining(["/var/run/docker.sock:/var/run/docker.sock"]));
    expect(parseDuration(svc.stop_grace_period as string)).toBeGreaterThan(60_000);
    expect(at(svc, "build", "dockerfile")).toBe("docker/Dockerfile.service");
  });

  it("Dockerfile.service builds from Debian with the PostgreSQL tools and runs attest serve under tini", () => {
    const text = readFileSync(join(DOCKER, "Dockerfile.service"), "utf8");
    expect(text).toMatch(/^FROM node:20-bookworm-slim/m);
    expect(text).toMatch(/postgresql-client-15/);
    // local sandboxes are confined by bubblewrap as an account of their own
    expect(text).toMatch(/\bbubblewrap\b/);
    expect(text).toMatch(/useradd [^\n]*attest-sandbox/);
    expect(text).toMatch(
      /^ENTRYPOINT \["\/usr\/bin\/tini", "--", "node", "\/opt\/attest\/dist\/cli\/main.js"\]$/m,
    );
    expect(text).toMatch(/^CMD \["serve", "--config", "\/etc\/attest\/attest.yml"\]$/m);
  });

  it("the systemd units pass systemd-analyze verify", () => {
    const units = ["attest.service", "attest-audit.service", "attest-audit.timer"].map((u) =>
      join(DOCKER, "systemd", u),
    );
    const r = spawnSync("systemd-analyze", ["verify", "--man=no", ...units], {
      encoding: "utf8",
      cwd: join(DOCKER, "systemd"),
    });
    if (r.error) throw new Error(`systemd-analyze is missing (apt-get install systemd): ${r.error.message}`);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("");
    const timer = readFileSync(units[2]!, "utf8");
    expect(timer).toMatch(/^Unit=attest-audit\.service$/m);
    expect(readFileSync(units[0]!, "utf8")).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  });
});
