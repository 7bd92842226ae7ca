import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT, runSnapctl, SNAPCTL } from '../helpers/processes.js';

/**
 * snapctl loads only what a command needs (issue 13): help and --version load no Redis
 * client, no schemas, no logger. Checked on the modules the real process loads (the
 * bundle's files mapped to the source modules they hold, through esbuild's metafile),
 * not on time, so it holds on a busy machine.
 */

const RECORDER = fileURLToPath(new URL('../fixtures/record-loaded-modules.mjs', import.meta.url));
/** esbuild's metafile, written by `npm run build` beside the bundle. */
const METAFILE = join(PROJECT_ROOT, 'dist', 'bot', 'cli', 'snapctl.meta.json');
/** What only a command that talks to Redis may load. */
const HEAVY = ['bullmq', 'ioredis', 'zod', 'pino', 'discord.js', 'yaml', 'cron-parser'];

const scratch = mkdtempSync(join(tmpdir(), 'snapctl-startup-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The source modules in each output file of the bundle, as absolute paths. */
function bundleContents(): Map<string, string[]> {
  const contents = new Map<string, string[]>();
  if (!existsSync(METAFILE)) return contents; // not bundled: the files loaded are the modules
  const meta = JSON.parse(readFileSync(METAFILE, 'utf8')) as { outputs: Record<string, { inputs: Record<string, unknown> }> };
  for (const [output, { inputs }] of Object.entries(meta.outputs)) {
    contents.set(join(PROJECT_ROOT, output), Object.keys(inputs).map((input) => join(PROJECT_ROOT, input)));
  }
  return contents;
}

let run = 0;

/** Runs snapctl with `args` and answers the source modules it loaded, and how it exited. */
async function modulesLoadedBy(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; modules: string[] }> {
  const record = join(scratch, `loaded-${(run += 1)}.txt`);
  const result = await runSnapctl(args, { REDIS_URL: 'redis://127.0.0.1:1', ...env, NODE_OPTIONS: `--import=${RECORDER}`, RECORD_LOADED_MODULES: record });
  const files = readFileSync(record, 'utf8')
    .split('\n')
    .filter((line) => line && !line.startsWith('node:'))
    .map((line) => (line.startsWith('file:') ? fileURLToPath(line) : line))
    .filter((file) => file !== RECORDER && !file.endsWith('record-loaded-modules-hooks.mjs'));
  const contents = bundleContents();
  return { code: result.code, modules: [...new Set(files.flatMap((file) => contents.get(file) ?? [file]))] };
}

function packagesIn(modules: string[]): string[] {
  return HEAVY.filter((name) => modules.some((module) => module.includes(`/node_modules/${name}/`)));
}

describe('snapctl start-up', () => {
  it.each([[['--help']], [['--version']], [['--version', '--json']], [['create', '--help']], [['fleet', 'snapshot', '--help']], [['schedule', 'create', '--help']]])(
    'loads no Redis client, schemas or logger for %j',
    async (args) => {
      const { code, modules } = await modulesLoadedBy(args);
      expect(code).toBe(0);
      expect(modules.some((module) => /\/bot\/cli\/snapctl\.(ts|js)$/.test(module)), 'snapctl itself was recorded').toBe(true);
      expect(packagesIn(modules)).toEqual([]);
      expect(modules.filter((module) => module.includes(`${join(PROJECT_ROOT, 'bot', 'core')}/`) || module.includes('/dist/bot/core/'))).toEqual([]);
    },
  );

  it('loads them when a command needs them (the recording sees what is there)', async () => {
    // Fails on the configuration, after the command's modules are loaded, before any connection.
    const { code, modules } = await modulesLoadedBy(['hosts', '--json'], { REDIS_URL: 'redis://h:99999' });
    expect(code).toBe(2);
    expect(packagesIn(modules)).toEqual(expect.arrayContaining(['bullmq', 'ioredis', 'zod']));
  });

  it('runs as a single bundle: the entry holds commander, so help reads one file of ours', async () => {
    const { modules } = await modulesLoadedBy(['--help']);
    expect(existsSync(METAFILE), 'npm run build writes dist/bot/cli/snapctl.meta.json').toBe(true);
    expect(modules.some((module) => module.includes('/node_modules/commander/'))).toBe(true);
    const contents = bundleContents().get(SNAPCTL) ?? [];
    expect(contents.some((module) => module.includes('/node_modules/commander/')), 'commander is inside dist/bot/cli/snapctl.js').toBe(true);
  });
});
