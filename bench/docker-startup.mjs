// Sandbox start time of the docker runtime, measured with the runtime's own code: provision()
// of an `init` sandbox (container created → server accepting connections), then destroy().
// One JSON line per sample on stdout; the first sample also pays for the engine connection and
// the image look-up (the runtime caches both, as it does across the drills of one run).
//   node bench/docker-startup.mjs DIST_DIR SAMPLES RUN_LABEL IMAGE_TEMPLATE [SOURCE_LABEL]
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [distArg, samplesArg, runLabel, image, sourceLabel = "attest-bench-startup"] = process.argv.slice(2);
const dist = resolve(distArg);
const samples = Number(samplesArg ?? 5);
const { createDockerRuntime } = await import(pathToFileURL(`${dist}/runtimes/docker/docker-runtime.js`).href);
const { silentLogger } = await import(pathToFileURL(`${dist}/util/log.js`).href);

const runtime = await createDockerRuntime(
  { image, network: "none", tmpfs: false, pull: false, max_processes: 1024 },
  silentLogger,
);
let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await runtime.destroyAll().catch(() => {});
  process.exit(143);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const majors = await runtime.availableMajors();
const major = Math.max(...majors);
if (!Number.isFinite(major)) throw new Error(`no image present for ${image} (it is never pulled here)`);
try {
  for (let i = 1; i <= samples && !stopping; i++) {
    const t0 = performance.now();
    const sandbox = await runtime.provision({
      pgMajor: major,
      allowNewer: true,
      labels: { run: runLabel, source: sourceLabel, backup: `sample-${i}` },
      mode: "init",
      inputs: [],
    });
    const t1 = performance.now();
    await sandbox.destroy();
    const t2 = performance.now();
    process.stdout.write(
      `${JSON.stringify({
        sample: i,
        major,
        provisionMs: Math.round(t1 - t0),
        destroyMs: Math.round(t2 - t1),
        ...sandbox.startup,
      })}\n`,
    );
  }
} finally {
  await runtime.destroyAll();
}
