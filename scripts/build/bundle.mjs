#!/usr/bin/env node
/**
 * `npm run build`, after tsc: bundles the two entry points people wait on with esbuild
 * (issue 13), each replacing tsc's output of it at the same path, so that starting one
 * reads a few files instead of walking hundreds of modules in node_modules:
 *
 * - snapctl, dist/bot/cli/snapctl.js (the `bin` entry). Code splitting keeps snapctl.ts's
 *   lazy imports lazy: `snapctl --help` reads snapctl.js alone, a command that talks to
 *   Redis reads the chunks it needs from dist/bot/cli/snapctl-chunks/. Not minified: it
 *   did not measurably load faster (paired runs), and line numbers keep stack traces and
 *   CPU profiles readable.
 * - the worker, dist/worker/main.js, chunks in dist/worker/main-chunks/ (prom-client and
 *   the metrics server load only with METRICS_PORT). Whitespace and syntax minified: its
 *   source stays in the worker's memory for as long as it runs (~0.6 MB less), and names
 *   stay, so stack traces still read. Everything else under dist/worker/ stays as tsc
 *   wrote it: tests and benchmarks import those modules directly (startWorker in-process).
 *   run-worker reads ../../package.json from its own URL: it stays in main.js, two levels
 *   down as before, since it is no dynamic import's.
 *
 * NAME.meta.json (esbuild's metafile) beside each entry says which source modules each
 * output file holds; snapctl's lazy-loading test reads it.
 */
import { build } from 'esbuild';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Packages whose modules do nothing on import but define things, so that esbuild may
 * leave out the modules an entry never uses (BullMQ's Worker and FlowProducer in snapctl,
 * all of yaml, which only the control process needs to read a policy): they do not say so
 * in their package.json ("sideEffects": false), so this plugin says it for them.
 */
const SIDE_EFFECT_FREE = ['bullmq', 'yaml'];
const insideSideEffectFree = new RegExp(`[\\\\/]node_modules[\\\\/](${SIDE_EFFECT_FREE.join('|')})[\\\\/]`);
const sideEffectFree = {
  name: 'side-effect-free',
  setup(build) {
    const mark = async (args) => {
      if (args.pluginData === 'side-effect-free') return undefined; // our own resolve, below
      const resolved = await build.resolve(args.path, { kind: args.kind, importer: args.importer, resolveDir: args.resolveDir, pluginData: 'side-effect-free' });
      return resolved.errors.length > 0 || resolved.external ? undefined : { path: resolved.path, sideEffects: false };
    };
    build.onResolve({ filter: new RegExp(`^(${SIDE_EFFECT_FREE.join('|')})$`) }, mark);
    build.onResolve({ filter: /^\./ }, (args) => (insideSideEffectFree.test(args.importer) ? mark(args) : undefined));
  },
};

/** Bundles `entry` into OUTDIR/NAME.js with its chunks in OUTDIR/NAME-chunks/ (see above). */
async function bundle({ name, entry, outdir, minify }) {
  const chunks = `${name}-chunks`;
  const result = await build({
    absWorkingDir: root,
    entryPoints: { [name]: entry },
    outdir: join(root, outdir),
    chunkNames: `${chunks}/[name]-[hash]`,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    // package.json's engines: Node 20.12 and later.
    target: 'node20.12',
    // BullMQ's ES module build, which esbuild can leave unused parts of out (its "main",
    // CommonJS, it cannot).
    alias: { bullmq: 'bullmq/dist/esm/index.js' },
    plugins: [sideEffectFree],
    minifyWhitespace: minify,
    minifySyntax: minify,
    sourcemap: true,
    metafile: true,
    logLevel: 'warning',
    // CommonJS dependencies (ioredis, pino…) call require() for Node's own modules; an ES
    // module has no require, so every output file gets one.
    banner: { js: "import { createRequire as __bundleCreateRequire } from 'node:module';\nconst require = __bundleCreateRequire(import.meta.url);" },
    external: [
      // Optional native or alternative back ends that dependencies try to require() and do
      // without when they are missing: msgpackr's native extractor (BullMQ), BullMQ's
      // Postgres and Valkey GLIDE connections.
      'msgpackr-extract',
      'pg',
      '@valkey/valkey-glide',
    ],
  });
  writeFileSync(join(root, outdir, `${name}.meta.json`), JSON.stringify(result.metafile));
  // Chunks of earlier builds go only now, not before: a process started before this build
  // still finds the chunks its entry names while the new ones are written.
  const chunkDir = join(root, outdir, chunks);
  mkdirSync(chunkDir, { recursive: true });
  const written = new Set(Object.keys(result.metafile.outputs).map((output) => join(root, output)));
  for (const file of readdirSync(chunkDir)) {
    if (!written.has(join(chunkDir, file))) rmSync(join(chunkDir, file));
  }
}

await Promise.all([
  bundle({ name: 'snapctl', entry: 'bot/cli/snapctl.ts', outdir: 'dist/bot/cli', minify: false }),
  bundle({ name: 'main', entry: 'worker/main.ts', outdir: 'dist/worker', minify: true }),
]);
