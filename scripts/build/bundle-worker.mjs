#!/usr/bin/env node
/**
 * `npm run build`, after tsc: bundles the worker into dist/worker/main.js (replacing tsc's
 * output of it) with esbuild, as scripts/build/bundle-snapctl.mjs does for snapctl. One
 * file of the code the worker uses instead of ~750 modules: it starts faster and idles
 * ~7 MiB smaller (docs/BENCHMARKS.md). Code splitting keeps the lazy imports lazy:
 * prom-client and the metrics server load only when METRICS_PORT is set.
 *
 * Everything else under dist/worker/ stays as tsc wrote it: tests and benchmarks import
 * those modules directly (startWorker in-process); only the entry point is the bundle.
 */
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'worker');
const chunks = 'main-chunks';

const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'worker/main.ts' },
  outdir,
  chunkNames: `${chunks}/[name]-[hash]`,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  // package.json's engines: Node 20.12 and later.
  target: 'node20.12',
  // BullMQ's ES module build, which esbuild can leave unused parts of out.
  alias: { bullmq: 'bullmq/dist/esm/index.js' },
  // Whitespace and syntax only: names stay, so stack traces still read.
  minifyWhitespace: true,
  minifySyntax: true,
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies (ioredis, pino…) call require() for Node's own modules; an ES
  // module has no require, so every output file gets one.
  banner: { js: "import { createRequire as __workerCreateRequire } from 'node:module';\nconst require = __workerCreateRequire(import.meta.url);" },
  // Optional back ends that dependencies try to require() and do without: msgpackr's
  // native extractor (BullMQ), BullMQ's Postgres and Valkey GLIDE connections.
  external: ['msgpackr-extract', 'pg', '@valkey/valkey-glide'],
});
writeFileSync(join(outdir, 'main.meta.json'), JSON.stringify(result.metafile));
// Chunks of earlier builds go only now: a worker started before this build still finds its own.
mkdirSync(join(outdir, chunks), { recursive: true });
const written = new Set(Object.keys(result.metafile.outputs).map((output) => join(root, output)));
for (const file of readdirSync(join(outdir, chunks))) {
  if (!written.has(join(outdir, chunks, file))) rmSync(join(outdir, chunks, file));
}
