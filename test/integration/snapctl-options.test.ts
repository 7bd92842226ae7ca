import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseJsonOutput, PROJECT_ROOT, runSnapctl } from '../helpers/processes.js';

/**
 * snapctl's own options, through the real CLI process: --version, strict numbers, help
 * that lists the common options, and configuration errors. None of these reach Redis:
 * REDIS_URL points at a closed port, so anything that tried would fail differently.
 */
const NO_REDIS = { REDIS_URL: 'redis://127.0.0.1:1' };
const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('snapctl --version', () => {
  it('prints the package version and exits 0', async () => {
    for (const flag of ['--version', '-V']) {
      const result = await runSnapctl([flag], NO_REDIS);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`${VERSION}\n`);
      expect(result.stderr).toBe('');
    }
  });

  it('prints { ok, version } with --json, before or after it', async () => {
    for (const args of [['--version', '--json'], ['--json', '--version']]) {
      const result = await runSnapctl(args, NO_REDIS);
      expect(result.code, args.join(' ')).toBe(0);
      expect(parseJsonOutput(result)).toEqual({ ok: true, version: VERSION });
    }
  });
});

describe('number options', () => {
  const refusals: Array<[string[], RegExp]> = [
    [['audit', '--limit', 'abc'], /option '--limit <count>' argument 'abc' is invalid\. It must be a whole number of 1 or more/],
    [['audit', '--limit', '0'], /option '--limit <count>' argument '0' is invalid\. It must be a whole number of 1 or more/],
    [['audit', '--limit', '1.5'], /option '--limit <count>' argument '1\.5' is invalid\. It must be a whole number of 1 or more/],
    [['audit', '--limit', '1e3'], /option '--limit <count>' argument '1e3' is invalid/],
    [['--timeout', 'abc', 'hosts'], /option '--timeout <seconds>' argument 'abc' is invalid\. It must be a number of seconds greater than 0/],
    [['hosts', '--timeout', '0x10'], /option '--timeout <seconds>' argument '0x10' is invalid/],
    [['hosts', '--timeout', '-5'], /option '--timeout <seconds>' argument '-5' is invalid/],
    [['hosts', '--timeout', '99999999'], /It must be at most 2147483 seconds/],
  ];

  it.each(refusals)('refuses %j with exit 2 and a sentence naming the option', async (args, sentence) => {
    const result = await runSnapctl(args, NO_REDIS);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(sentence);
    expect(result.stderr).not.toMatch(/REDIS_UNAVAILABLE/);
  });

  it('says the same in one JSON object with --json', async () => {
    const result = await runSnapctl(['--json', 'audit', '--limit', 'abc'], NO_REDIS);
    expect(result.code).toBe(2);
    expect(parseJsonOutput(result)).toEqual({
      ok: false,
      code: 'VALIDATION',
      message: "option '--limit <count>' argument 'abc' is invalid. It must be a whole number of 1 or more, in digits (for example 20).",
    });
  });
});

describe('subcommand help', () => {
  it.each([[['create']], [['fleet', 'snapshot']], [['schedule', 'create']], [['audit']]])('%j --help lists --json and --timeout', async (words) => {
    const result = await runSnapctl([...words, '--help'], NO_REDIS);
    expect(result.code).toBe(0);
    const globalOptions = result.stdout.split('Global Options:')[1] ?? '';
    expect(globalOptions).toMatch(/--json\s+print one JSON object/);
    expect(globalOptions).toMatch(/--timeout <seconds>\s+how long to wait for the result \(default: 600\)/);
  });

  it('takes the common options after the subcommand, as its help says', async () => {
    const result = await runSnapctl(['hosts', '--json', '--timeout', '0'], NO_REDIS);
    expect(result.code).toBe(2);
    expect(parseJsonOutput(result)).toMatchObject({ ok: false, code: 'VALIDATION', message: expect.stringContaining("'--timeout <seconds>' argument '0'") });
  });
});

describe('configuration errors', () => {
  it('names REDIS_URL when its port is out of range (exit 2, VALIDATION, not INTERNAL)', async () => {
    const result = await runSnapctl(['hosts', '--json'], { REDIS_URL: 'redis://h:99999' });
    expect(result.code).toBe(2);
    expect(parseJsonOutput(result)).toEqual({
      ok: false,
      code: 'VALIDATION',
      message: "Invalid configuration: REDIS_URL's port 99999 is out of range: ports go from 1 to 65535",
    });
  });

  it('explains a REDIS_URL without a host', async () => {
    const result = await runSnapctl(['hosts'], { REDIS_URL: 'redis://' });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^snapctl: VALIDATION: Invalid configuration: REDIS_URL has no host: .*6379 when left out.*unset.*127\.0\.0\.1:6380/);
  });

  it('counts an empty LOG_LEVEL as unset', async () => {
    const result = await runSnapctl(['hosts', '--json'], { ...NO_REDIS, LOG_LEVEL: '' });
    expect(parseJsonOutput(result)).toMatchObject({ ok: false, code: 'REDIS_UNAVAILABLE' });
  });
});
