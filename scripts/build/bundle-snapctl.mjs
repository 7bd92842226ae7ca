#!/usr/bin/env node
/**
 * `npm run build`, after tsc: bundles snapctl into dist/bot/cli/snapctl.js (the `bin`
 * entry, replacing tsc's output of it) with esbuild, so that starting it reads a few
 * files instead of walking some 400 modules in node_modules (issue 13). Code splitting
 * keeps snapctl.ts's lazy imports lazy: `snapctl --help` reads snapctl.js alone, a
 * command that talks to Redis reads the chunks it needs from dist/bot/cli/snapctl-chunks/.
 *
 * dist/bot/cli/snapctl.meta.json (esbuild's metafile) says which source modules each
 * output file holds; the lazy-loading test reads it.
 */
import { build } from 'esbuild';
import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * Packages whose modules do nothing on import but define things, so that esbuild may
 * leave out the modules snapctl never uses (BullMQ's Worker and FlowProducer, all of
 * yaml, which only the control process needs to read a policy): they do not say so in
 * their package.json ("sideEffects": false), so this plugin says it for them.
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
const outdir = join(root, 'dist', 'bot', 'cli');
const chunks = 'snapctl-chunks';

const result = await build({
  absWorkingDir: root,
  entryPoints: { snapctl: 'bot/cli/snapctl.ts' },
  outdir,
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
  // Not minified: it did not measurably load faster (paired runs), and line numbers keep
  // stack traces and CPU profiles (line-level ticks) readable.
  sourcemap: true,
  metafile: true,
  logLevel: 'warning',
  // CommonJS dependencies (ioredis, pino…) call require() for Node's own modules; an ES
  // module has no require, so every output file gets one.
  banner: { js: "import { createRequire as __snapctlCreateRequire } from 'node:module';\nconst require = __snapctlCreateRequire(import.meta.url);" },
  external: [
    // Optional native or alternative back ends that dependencies try to require() and do
    // without when they are missing: msgpackr's native extractor (BullMQ), BullMQ's
    // Postgres and Valkey GLIDE connections.
    'msgpackr-extract',
    'pg',
    '@valkey/valkey-glide',
  ],
});
writeFileSync(join(outdir, 'snapctl.meta.json'), JSON.stringify(result.metafile));
// Chunks of earlier builds go only now, not before: a snapctl started before this build
// still finds the chunks its entry names while the new ones are written.
const written = new Set(Object.keys(result.metafile.outputs).map((output) => join(root, output)));
for (const file of readdirSync(join(outdir, chunks))) {
  if (!written.has(join(outdir, chunks, file))) rmSync(join(outdir, chunks, file));
}
