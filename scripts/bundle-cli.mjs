// Bundles the compiled CLI (tsc's dist/) into dist/cli/main.js plus dist/chunks/, so `attest`
// starts by reading a few files instead of resolving ~500 modules one by one: Node 20's ESM
// loader spends ~0.5 ms per module, and a drill used to load ~330 of them before it started.
//
//   node scripts/bundle-cli.mjs [--dist DIR]      (npm run build runs it after tsc)
//
// - Input is tsc's output, never the TypeScript: tsc stays the one compiler, and its source maps
//   are carried through, so the bundle's maps still point into src/.
// - Commands stay lazy: each `await import()` becomes a chunk loaded when its command runs.
// - Packages with native addons or data files read from their own folder (pdfkit's fonts,
//   dockerode's ssh2), and the large SDKs a drill never loads, stay ordinary imports.
// - Optional: without rolldown (a production install without dev dependencies) the tsc
//   output is left as it is, which works the same, only starts slower.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

const args = process.argv.slice(2);
const at = args.indexOf("--dist");
const dist = resolve(at >= 0 ? args[at + 1] : "dist");
const entry = join(dist, "cli", "main.js");
const MARK = "// attest: bundled by scripts/bundle-cli.mjs";

/** Imported at run time from node_modules rather than copied into the bundle. */
const EXTERNAL =
  /^(node:.*|dockerode|docker-modem|ssh2|cpu-features|pdfkit|fontkit|nodemailer|prom-client|testcontainers|oci-[a-z-]+|@aws-sdk\/.*|@smithy\/.*)(\/.*)?$/;

if (!existsSync(entry)) {
  console.error(`bundle-cli: ${entry} does not exist: run tsc -p tsconfig.json first`);
  process.exit(2);
}
if (readFileSync(entry, "utf8").includes(MARK)) {
  // bundling the bundle would drop the modules it no longer names: tsc must run again first
  console.error(`bundle-cli: ${entry} is already a bundle: run tsc -p tsconfig.json first`);
  process.exit(2);
}

let rolldown;
try {
  rolldown = await import("rolldown");
} catch {
  console.error("bundle-cli: rolldown is not installed; keeping tsc's unbundled dist/ (slower start)");
  process.exit(0);
}

/** Hands rolldown tsc's own source map of each compiled file, so maps chain to src/. */
const tscMaps = {
  name: "attest-tsc-maps",
  load(id) {
    if (!id.startsWith(`${dist}/`) || !id.endsWith(".js")) return null;
    const code = readFileSync(id, "utf8");
    const mapFile = `${id}.map`;
    if (!existsSync(mapFile)) return { code };
    const map = JSON.parse(readFileSync(mapFile, "utf8"));
    map.sourceRoot = resolve(dirname(id), map.sourceRoot ?? "");
    return { code: code.replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n"), map };
  },
};

const hasMaps = existsSync(`${entry}.map`);
const build = await rolldown.rolldown({
  input: entry,
  platform: "node",
  external: (id) => EXTERNAL.test(id),
  plugins: [tscMaps],
  logLevel: "warn",
});
// written next to tsc's files: only main.js is replaced; chunks/ holds nothing else
rmSync(join(dist, "chunks"), { recursive: true, force: true });
await build.write({
  dir: dist,
  format: "esm",
  entryFileNames: "cli/main.js",
  chunkFileNames: "chunks/[name]-[hash].js",
  sourcemap: hasMaps,
  banner: (chunk) => (chunk.isEntry ? MARK : ""),
});
await build.close();
