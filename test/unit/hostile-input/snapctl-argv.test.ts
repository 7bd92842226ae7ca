/**
 * snapctl's argument parsing on any argv: a parsed command (its action stubbed, so nothing
 * reaches Redis) or a commander usage error, never another exception.
 */
import { Command, CommanderError } from 'commander';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { hostileText, RUNS } from './arbitraries.js';

let buildProgram: () => Command;

beforeAll(async () => {
  // Importing snapctl runs it on process.argv: run it as `snapctl --help`, quietly.
  const argv = process.argv;
  const exitCode = process.exitCode;
  const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  process.argv = [argv[0]!, 'snapctl', '--help'];
  try {
    ({ buildProgram } = await import('../../../bot/cli/snapctl.js'));
  } finally {
    process.argv = argv;
    process.exitCode = exitCode;
    quiet.mockRestore();
  }
});

afterAll(() => vi.restoreAllMocks());

/** The program with every action replaced by one that records what it was given, and no output. */
function parsingOnly(): { program: Command; calls: unknown[][] } {
  const calls: unknown[][] = [];
  const program = buildProgram();
  const visit = (command: Command) => {
    command.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
    if (command.commands.length === 0) command.action((...args: unknown[]) => void calls.push(args.slice(0, -1)));
    for (const sub of command.commands) visit(sub);
  };
  visit(program);
  return { program, calls };
}

const WORDS = [
  'create', 'list', 'info', 'revert', 'delete', 'audit', 'hosts', 'fleet', 'snapshot', 'status', 'cancel', 'retry', 'schedule', 'key',
  '--vm', '--host', '--name', '--mode', 'disk-only', 'full', '--description', '--json', '--timeout', '--limit', '--target', '--yes',
  '--no-wait', '--break-glass', '--help', '-h', '--version', '-V', '--', '-', '--vm=', '--timeout=0', '--timeout=-1', '--timeout=1e309',
  '--timeout=NaN', '--limit=x', 'web-*', '!web-canary', 'host:kvm-1', 'all', '{vm}-{date}',
]; // prettier-ignore

const argv = fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...WORDS) }, { weight: 1, arbitrary: hostileText(10) }), { maxLength: 10 });

describe('snapctl argv', () => {
  it('parses to a command or a usage error, whatever the words', async () => {
    await fc.assert(
      fc.asyncProperty(argv, async (words) => {
        const { program, calls } = parsingOnly();
        try {
          await program.parseAsync(words, { from: 'user' });
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(CommanderError);
          return;
        }
        expect(calls.length).toBeLessThanOrEqual(1);
      }),
      { numRuns: RUNS },
    );
  });

  it('passes option values through literally, however hostile', async () => {
    await fc.assert(
      fc.asyncProperty(hostileText(), hostileText(), async (vm, name) => {
        const { program, calls } = parsingOnly();
        await program.parseAsync(['info', `--vm=${vm}`, `--name=${name}`], { from: 'user' });
        expect(calls).toHaveLength(1);
        expect(calls[0]![0]).toMatchObject({ vm, name });
      }),
      { numRuns: 200 },
    );
  });

  it('refuses a bad --timeout as a usage error', async () => {
    for (const timeout of ['0', '-1', 'NaN', 'x', 'Infinity']) {
      const { program } = parsingOnly();
      await expect(program.parseAsync(['--timeout', timeout, 'hosts'], { from: 'user' })).rejects.toBeInstanceOf(CommanderError);
    }
  });
});
