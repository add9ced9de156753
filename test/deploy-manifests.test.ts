/**
 * The least-privilege properties of the deployment files in docker/ (docs/deploy.md): each is
 * parsed (YAML as Kubernetes and compose read it, the units as systemd's ini) and every property
 * is asserted, so removing one fails here. What test/serve-deploy.test.ts already checks (the
 * CronJob's required fields and bubblewrap's three fields, compose's host networking and socket,
 * the image's entrypoint, `systemd-analyze verify`) is not repeated.
 */
import { spawnSync } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join, posix } from "node:path";
import { CronJob } from "kubernetes-models/batch/v1";
import { ConfigMap, Namespace, PersistentVolumeClaim, ServiceAccount } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parse, parseAllDocuments } from "yaml";
import { ROOT } from "./support/cli.js";

const DOCKER = join(ROOT, "docker");
/** The image's account; compose, Kubernetes and the image must agree on it. */
const UID = 10001;

type Obj = Record<string, unknown>;
const at = (o: unknown, ...path: Array<string | number>): unknown =>
  path.reduce<unknown>((v, k) => (v as Record<string | number, unknown> | undefined)?.[k], o);

describe("Dockerfile.service", () => {
  const text = readFileSync(join(DOCKER, "Dockerfile.service"), "utf8");
  const finalStage = text.slice(text.lastIndexOf("\nFROM "));

  it("runs as a fixed, non-root uid that the image creates", () => {
    const users = [...finalStage.matchAll(/^USER\s+(\S+)$/gm)].map((m) => m[1]!);
    expect(users.at(-1)).toBe(`${UID}:${UID}`);
    expect(finalStage).toMatch(new RegExp(`useradd [^\\n]*--uid ${UID} [^\\n]*\\battest$`, "m"));
    // the program stays root's; only the state folder is handed to the account
    expect([...finalStage.matchAll(/chown (?:-R )?(\S+) (\S+)/g)].map((m) => [m[1], m[2]])).toEqual([
      [`${UID}:${UID}`, "/var/lib/attest"],
    ]);
  });

  it("bakes in no secret and copies only what runs", () => {
    for (const m of finalStage.matchAll(/^(?:ENV|ARG)\s+([A-Za-z_][A-Za-z0-9_]*)/gm))
      expect(m[1]).not.toMatch(/PASS|SECRET|TOKEN|KEY|CREDENTIAL/i);
    const copied = [...finalStage.matchAll(/^COPY\s+(?:--from=\S+\s+)?(.+?)\s+\S+$/gm)].flatMap((m) =>
      m[1]!.split(/\s+/),
    );
    expect(copied.sort()).toEqual(["/src/dist", "/src/node_modules", "config.example.yml", "package.json"]);
    expect(text).not.toMatch(/\.pem\b|secrets\/|\.env\b/);
    // the development tree stays in the build stage
    expect(text).toMatch(/npm prune --omit=dev/);
  });

  it("checks the service's HTTP endpoint and defaults the config through $ATTEST_CONFIG", () => {
    expect(finalStage).toMatch(/^HEALTHCHECK [\s\S]*?http:\/\/127\.0\.0\.1:9187\/healthz/m);
    expect(finalStage).toMatch(/^ENV ATTEST_CONFIG=\/etc\/attest\/attest\.yml$/m);
  });
});

describe("compose.yml", () => {
  const compose = parse(readFileSync(join(DOCKER, "compose.yml"), "utf8")) as Obj;
  const svc = at(compose, "services", "attest") as Obj;

  it("runs as the image's uid with no capability, no privilege gain and a read-only root", () => {
    expect(svc.user).toBe(`${UID}:${UID}`);
    expect(svc.privileged).toBeUndefined();
    expect(svc.cap_drop).toEqual(["ALL"]);
    // the Docker runtime needs none back (the file says why); a cap_add must come with a reason
    expect(svc.cap_add).toBeUndefined();
    expect(svc.security_opt).toContain("no-new-privileges:true");
    expect(svc.read_only).toBe(true);
    expect((svc.tmpfs as string[]).map((t) => t.split(":")[0])).toEqual(["/tmp"]);
    for (const k of ["pid", "ipc", "userns_mode", "devices"]) expect(svc[k]).toBeUndefined();
    expect(svc.mem_limit).toBeDefined();
    expect(svc.pids_limit).toBeGreaterThan(0);
  });

  it("keeps state and reports in named volumes; every other writable mount is the sandboxes' own", () => {
    const named = Object.keys(compose.volumes as Obj);
    const mounts = (svc.volumes as string[]).map((v) => {
      const [source, target, mode] = v.split(":");
      return { source: source!, target: target!, ro: mode === "ro" };
    });
    const byTarget = (t: string) => mounts.find((m) => m.target === t);
    expect(named).toContain(byTarget("/var/lib/attest")?.source);
    expect(named).toContain(byTarget("/var/lib/attest/reports")?.source);
    expect(byTarget("/etc/attest/attest.yml")?.ro).toBe(true);
    const writableHost = mounts.filter((m) => !m.ro && m.source.startsWith("/") && !named.includes(m.source));
    // the engine socket and the sandbox directory, which the engine binds by host path
    expect(writableHost.map((m) => m.target).sort()).toEqual([
      "/var/lib/attest-sandboxes",
      "/var/run/docker.sock",
    ]);
  });

  it("passes secrets as files, never in the environment", () => {
    const secrets = compose.secrets as Record<string, { file?: string }>;
    expect((svc.secrets as string[]).length).toBeGreaterThan(0);
    for (const name of svc.secrets as string[]) expect(secrets[name]?.file).toMatch(/^\.\/secrets\//);
    for (const key of Object.keys((svc.environment as Obj | undefined) ?? {}))
      expect(key).not.toMatch(/PASS|SECRET|TOKEN|KEY|WEBHOOK/i);
    const header = readFileSync(join(DOCKER, "compose.yml"), "utf8");
    expect(header).toMatch(/\$\{file:\/run\/secrets\/smtp_password\}/);
  });

  it("checks the service's /healthz", () => {
    const test = at(svc, "healthcheck", "test") as string[];
    expect(test[0]).toBe("CMD");
    expect(test.join(" ")).toContain("http://127.0.0.1:9187/healthz");
  });
});

/** The Pod Security Standard level a pod spec meets, for the fields these manifests can set. */
function podSecurityLevel(pod: Obj): "restricted" | "baseline" | "privileged" {
  const containers = [...((pod.containers as Obj[]) ?? []), ...((pod.initContainers as Obj[]) ?? [])];
  const sc = (c: Obj) => (c.securityContext as Obj | undefined) ?? {};
  const podSc = (pod.securityContext as Obj | undefined) ?? {};
  const seccomp = (c: Obj) => at(sc(c), "seccompProfile", "type") ?? at(podSc, "seccompProfile", "type");
  const volumes = (pod.volumes as Obj[]) ?? [];
  // procMount Unmasked is baseline only for a pod in its own user namespace (recent policy versions)
  const userNamespaced = pod.hostUsers === false;
  const baseline =
    !pod.hostNetwork &&
    !pod.hostPID &&
    !pod.hostIPC &&
    volumes.every((v) => v.hostPath === undefined) &&
    containers.every(
      (c) =>
        sc(c).privileged !== true &&
        ((at(sc(c), "capabilities", "add") as string[] | undefined) ?? []).length === 0 &&
        ((c.ports as Obj[] | undefined) ?? []).every((p) => !p.hostPort) &&
        (sc(c).procMount === undefined || sc(c).procMount === "Default" || userNamespaced) &&
        seccomp(c) !== "Unconfined",
    );
  if (!baseline) return "privileged";
  const allowedVolumes = [
    "configMap",
    "secret",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
  ];
  const restricted =
    volumes.every((v) => Object.keys(v).every((k) => k === "name" || allowedVolumes.includes(k))) &&
    containers.every(
      (c) =>
        sc(c).allowPrivilegeEscalation === false &&
        (sc(c).runAsNonRoot ?? podSc.runAsNonRoot) === true &&
        (sc(c).runAsUser ?? podSc.runAsUser) !== 0 &&
        ["RuntimeDefault", "Localhost"].includes(seccomp(c) as string) &&
        (at(sc(c), "capabilities", "drop") as string[] | undefined)?.includes("ALL") === true &&
        (sc(c).procMount === undefined || sc(c).procMount === "Default"),
    );
  return restricted ? "restricted" : "baseline";
}

const LEVELS = ["privileged", "baseline", "restricted"] as const;

describe("Kubernetes manifests", () => {
  const files = readdirSync(join(DOCKER, "k8s")).filter((f) => f.endsWith(".yaml"));
  // YAML 1.1, as Kubernetes reads it (a mode like 0440 is octal there)
  const objects = files.flatMap((f) =>
    parseAllDocuments(readFileSync(join(DOCKER, "k8s", f), "utf8"), { version: "1.1" }).map((d) => {
      expect(d.errors, f).toEqual([]);
      return d.toJS() as Obj;
    }),
  );
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  const namespace = ofKind("Namespace")[0]!;
  const podSpecs = ofKind("CronJob").map(
    (c) => at(c, "spec", "jobTemplate", "spec", "template", "spec") as Obj,
  );

  it("validate against the Kubernetes API schemas (types, enums, required fields)", () => {
    // each model's own input type; the parsed objects are checked at run time, which is the point
    const models: Record<string, new (o: never) => { validate(): void }> = {
      "v1/Namespace": Namespace,
      "v1/ServiceAccount": ServiceAccount,
      "v1/PersistentVolumeClaim": PersistentVolumeClaim,
      "v1/ConfigMap": ConfigMap,
      "batch/v1/CronJob": CronJob,
    };
    for (const o of objects) {
      const Model = models[`${o.apiVersion}/${o.kind}`];
      expect(Model, `${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(() => new Model!(o as never).validate(), `${o.kind} ${at(o, "metadata", "name")}`).not.toThrow();
    }
    // the check bites: a misspelt enum value and a uid as text are refused
    const cron = structuredClone(ofKind("CronJob")[0]!);
    const c = at(cron, "spec", "jobTemplate", "spec", "template", "spec", "containers", 0) as Obj;
    (c.securityContext as Obj).procMount = "Unmaskd";
    expect(() => new CronJob(cron as never).validate()).toThrow(
      /procMount must be equal to one of the allowed values/,
    );
  });

  it("put every object in one namespace labelled with the Pod Security level its pods meet", () => {
    expect(namespace).toBeDefined();
    const name = at(namespace, "metadata", "name");
    for (const o of objects.filter((o) => o.kind !== "Namespace"))
      expect(at(o, "metadata", "namespace"), `${o.kind} ${at(o, "metadata", "name")}`).toBe(name);
    const labels = at(namespace, "metadata", "labels") as Record<string, string>;
    const met = podSpecs.map(podSecurityLevel);
    // enforce what the least compliant pod meets, no less; warn and audit one level stricter
    const weakest = LEVELS[Math.min(...met.map((l) => LEVELS.indexOf(l)))]!;
    expect(labels["pod-security.kubernetes.io/enforce"]).toBe(weakest);
    const stricter = LEVELS[Math.min(LEVELS.indexOf(weakest) + 1, 2)];
    expect(labels["pod-security.kubernetes.io/warn"]).toBe(stricter);
    expect(labels["pod-security.kubernetes.io/audit"]).toBe(stricter);
  });

  it("the CronJob's pod is below baseline only by the seccomp profile bubblewrap needs", () => {
    for (const pod of podSpecs) {
      const c = at(pod, "containers", 0) as Obj;
      const relaxed = {
        ...c,
        securityContext: { ...(c.securityContext as Obj), seccompProfile: { type: "Localhost" } },
      };
      // with a Localhost profile that allows namespaces (docs/deploy.md) it would be baseline
      expect(podSecurityLevel({ ...pod, containers: [relaxed] })).toBe("baseline");
      // and restricted only without the unmasked /proc, which confines nothing then
      const unmaskedOff = {
        ...relaxed,
        securityContext: { ...relaxed.securityContext, procMount: "Default" },
      };
      expect(podSecurityLevel({ ...pod, containers: [unmaskedOff] })).toBe("restricted");
    }
  });

  it("run pods as the image's uid, read-only, with no capability and no API token", () => {
    const accounts = ofKind("ServiceAccount");
    for (const pod of podSpecs) {
      expect(pod.securityContext).toMatchObject({
        runAsNonRoot: true,
        runAsUser: UID,
        runAsGroup: UID,
        fsGroup: UID,
      });
      expect(pod.automountServiceAccountToken).toBe(false);
      const account = accounts.find((a) => at(a, "metadata", "name") === pod.serviceAccountName);
      expect(account?.automountServiceAccountToken).toBe(false);
      for (const c of pod.containers as Obj[]) {
        expect(c.securityContext).toMatchObject({
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
          capabilities: { drop: ["ALL"] },
        });
        expect(at(c, "securityContext", "capabilities", "add")).toBeUndefined();
        expect(at(c, "securityContext", "privileged")).toBeUndefined();
        for (const k of ["cpu", "memory"]) expect(at(c, "resources", "requests", k), k).toBeDefined();
        expect(at(c, "resources", "limits", "memory")).toBeDefined();
        expect(at(c, "resources", "limits", "cpu")).toBeDefined();
      }
    }
  });

  it("keep state and reports on claims, secrets as files; every writable mount is a claim or the sandboxes' scratch", () => {
    const claims = ofKind("PersistentVolumeClaim").map((p) => at(p, "metadata", "name"));
    const configMap = ofKind("ConfigMap")[0]!;
    const config = parse(at(configMap, "data", "attest.yml") as string) as Obj;
    for (const pod of podSpecs) {
      const c = at(pod, "containers", 0) as Obj;
      const volumes = pod.volumes as Obj[];
      const mounts = c.volumeMounts as Obj[];
      const volumeAt = (path: string) =>
        volumes.find((v) => v.name === mounts.find((m) => m.mountPath === path)?.name);
      for (const path of ["/var/lib/attest", "/var/lib/attest/reports"])
        expect(claims).toContain(at(volumeAt(path), "persistentVolumeClaim", "claimName"));
      // the history and the reports land on those claims
      expect(posix.dirname(at(config, "history", "csv") as string)).toBe("/var/lib/attest");
      expect(at(config, "reports", "dir")).toBe("/var/lib/attest/reports");
      for (const m of mounts.filter((m) => m.readOnly !== true)) {
        const v = volumes.find((v) => v.name === m.name)!;
        expect(v.persistentVolumeClaim ?? v.emptyDir, String(m.mountPath)).toBeDefined();
        if (v.persistentVolumeClaim) expect(claims).toContain(at(v, "persistentVolumeClaim", "claimName"));
      }
      // secrets: files of a Secret volume, readable by the account's group at most
      expect(c.env as Obj[]).not.toContainEqual(
        expect.objectContaining({ valueFrom: expect.objectContaining({ secretKeyRef: expect.anything() }) }),
      );
      const secretVolume = volumes.find((v) => v.secret)!;
      expect((at(secretVolume, "secret", "defaultMode") as number) & 0o337).toBe(0);
      const secretPath = mounts.find((m) => m.name === secretVolume.name)!.mountPath as string;
      const refs = [...(at(configMap, "data", "attest.yml") as string).matchAll(/\$\{([^}]+)\}/g)].map(
        (m) => m[1]!,
      );
      expect(refs.length).toBeGreaterThan(0);
      for (const ref of refs) expect(ref.startsWith(`file:${secretPath}/`), ref).toBe(true);
    }
  });
});

/** A unit file as systemd reads it: section → key → every value assigned, in order. */
function parseUnit(text: string): Map<string, Map<string, string[]>> {
  const sections = new Map<string, Map<string, string[]>>();
  let current: Map<string, string[]> | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#") || line.startsWith(";")) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf("=");
    if (!current || eq < 0) throw new Error(`not a unit file line: ${line}`);
    const key = line.slice(0, eq).trim();
    current.set(key, [...(current.get(key) ?? []), line.slice(eq + 1).trim()]);
  }
  return sections;
}

describe("systemd units", () => {
  const dir = join(DOCKER, "systemd");
  const services = readdirSync(dir).filter((f) => f.endsWith(".service"));

  it.each(services)("%s confines the service and keeps its writes in its state directory", (unit) => {
    const svc = parseUnit(readFileSync(join(dir, unit), "utf8")).get("Service")!;
    // the last assignment wins; an empty one resets a list
    const one = (k: string) => svc.get(k)?.at(-1);
    const list = (k: string) => (one(k) ?? "").split(/\s+/).filter(Boolean);
    const yes = (k: string) => ["yes", "true", "1", "on"].includes(one(k) ?? "");
    expect(one("User")).toBe("attest");
    expect(one("Group")).toBe("attest");
    expect(one("ProtectSystem")).toBe("strict");
    expect(one("StateDirectory")).toBe("attest");
    expect(one("WorkingDirectory")).toBe("/var/lib/attest");
    expect(svc.get("ReadWritePaths")).toBeUndefined();
    expect(one("ProtectHome")).toMatch(/^(yes|true|tmpfs)$/);
    for (const k of [
      "PrivateTmp",
      "NoNewPrivileges",
      "PrivateDevices",
      "ProtectControlGroups",
      "ProtectKernelModules",
      "RestrictSUIDSGID",
      "LockPersonality",
      "RestrictRealtime",
    ])
      expect(yes(k), k).toBe(true);
    expect(one("CapabilityBoundingSet")).toBe("");
    expect(one("AmbientCapabilities")).toBe("");
    expect(list("RestrictAddressFamilies").sort()).toEqual(["AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"]);
    // bubblewrap's namespaces, and no deny list (a leading ~) in their place
    expect(list("RestrictNamespaces").sort()).toEqual(["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]);
    // these cover parts of /proc, and the kernel then refuses bubblewrap a fresh /proc
    for (const k of ["ProtectKernelTunables", "ProtectKernelLogs"]) expect(yes(k), k).toBe(false);
    expect(one("ProcSubset") ?? "all").toBe("all");
    expect(one("MemoryMax")).toMatch(/^\d+[KMGT]?$/);
    expect(Number(one("TasksMax"))).toBeGreaterThan(0);
    // not root, Attest cannot take a socket directory back from a sandbox: hide the host's servers
    expect(svc.get("InaccessiblePaths")?.join(" ")).toContain("-/run/postgresql");
    expect(one("ExecStart")).toMatch(/ --config \/etc\/attest\/attest\.yml\b/);
  });

  it.each(services)(
    "%s: systemd-analyze security --offline rates it below 4.5 and finds no capability",
    (unit) => {
      const r = spawnSync("systemd-analyze", ["security", "--offline=yes", "--no-pager", unit], {
        encoding: "utf8",
        cwd: dir,
      });
      if (r.error)
        throw new Error(`systemd-analyze is missing (apt-get install systemd): ${r.error.message}`);
      const exposure = /Overall exposure level for \S+: ([\d.]+)/.exec(r.stdout);
      expect(exposure, r.stdout + r.stderr).not.toBeNull();
      expect(Number(exposure![1])).toBeLessThan(4.5);
      for (const check of [
        "ProtectSystem=",
        "NoNewPrivileges=",
        "CapabilityBoundingSet=~CAP_SYS_ADMIN",
        "User=/DynamicUser=",
      ])
        expect(r.stdout).toMatch(new RegExp(`✓ ${check.replace(/[$()*+.?[\\\]^{|}]/g, "\\$&")}`));
    },
  );
});
