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
import { rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const outdir = join(root, 'dist', 'bot', 'cli');
const chunks = 'snapctl-chunks';

rmSync(join(outdir, chunks), { recursive: true, force: true });
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
