import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

/** snapctl's strict number options, its version, and help that lists the common options. */

let snapctl: {
  buildProgram: () => Command;
  parseSeconds: (value: string) => number;
  parseCount: (value: string) => number;
  packageVersion: (from?: string) => string;
};
const scratch = mkdtempSync(join(tmpdir(), 'snapctl-options-'));

beforeAll(async () => {
  // Importing snapctl runs it on process.argv: run it as `snapctl --help`, quietly.
  const argv = process.argv;
  const exitCode = process.exitCode;
  const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  process.argv = [argv[0]!, 'snapctl', '--help'];
  try {
    snapctl = await import('../../../../bot/cli/snapctl.js');
  } finally {
    process.argv = argv;
    process.exitCode = exitCode;
    quiet.mockRestore();
  }
});

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('--timeout', () => {
  it('takes seconds in digits, fractions included', () => {
    expect(snapctl.parseSeconds('90')).toBe(90);
    expect(snapctl.parseSeconds('2.5')).toBe(2.5);
    expect(snapctl.parseSeconds('2147483')).toBe(2_147_483);
  });

  it.each(['abc', '', '0', '0.0', '-1', '1e3', '0x10', 'Infinity', 'NaN', '10m', ' 5', '.5', '5.'])('refuses %j', (value) => {
    expect(() => snapctl.parseSeconds(value)).toThrow(InvalidArgumentError);
    expect(() => snapctl.parseSeconds(value)).toThrow('It must be a number of seconds greater than 0, in digits (for example 90 or 2.5).');
  });

  it('refuses more than Node timers keep', () => {
    expect(() => snapctl.parseSeconds('2147484')).toThrow('It must be at most 2147483 seconds (about 24 days).');
  });
});

describe('--limit', () => {
  it('takes a whole number of 1 or more', () => {
    expect(snapctl.parseCount('1')).toBe(1);
    expect(snapctl.parseCount('50')).toBe(50);
  });

  it.each(['abc', '', '0', '1.5', '-3', '1e3', '0x10', '12abc', '99999999999999999999'])('refuses %j', (value) => {
    expect(() => snapctl.parseCount(value)).toThrow('It must be a whole number of 1 or more, in digits (for example 20).');
  });

  it('is refused by the parser as a usage error naming the option', async () => {
    const program = snapctl.buildProgram();
    const quiet = (command: Command): void => {
      command.exitOverride().configureOutput({ writeOut: () => undefined, writeErr: () => undefined, outputError: () => undefined });
      command.commands.forEach(quiet);
    };
    quiet(program);
    const error: unknown = await program.parseAsync(['audit', '--limit', 'abc'], { from: 'user' }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CommanderError);
    expect((error as CommanderError).message).toBe("error: option '--limit <count>' argument 'abc' is invalid. It must be a whole number of 1 or more, in digits (for example 20).");
  });
});

describe('the version', () => {
  it("is snapbot's package.json version, found above the running file", () => {
    const root = join(scratch, 'install');
    const deep = join(root, 'node_modules', 'snapbot', 'dist', 'bot', 'cli');
    mkdirSync(deep, { recursive: true });
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'someone-else', version: '9.9.9' }));
    writeFileSync(join(root, 'node_modules', 'snapbot', 'package.json'), JSON.stringify({ name: 'snapbot', version: '1.2.3' }));
    expect(snapctl.packageVersion(deep)).toBe('1.2.3');
  });

  it('is "unknown" rather than a crash when no package.json is found', () => {
    expect(snapctl.packageVersion(join(scratch, 'nowhere'))).toBe('unknown');
  });

  it('stops parsing at --version, wherever it is, with the version', async () => {
    const program = snapctl.buildProgram().exitOverride();
    const error: unknown = await program.parseAsync(['--json', '--version'], { from: 'user' }).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ exitCode: 0, code: 'snapctl.version', message: snapctl.packageVersion() });
  });
});

describe('help', () => {
  it('of every subcommand lists the common options', () => {
    const visit = (command: Command, path: string[]): void => {
      if (command.commands.length === 0) {
        const help = command.helpInformation();
        expect(help, path.join(' ')).toMatch(/Global Options:[\s\S]*--json[\s\S]*--timeout <seconds>/);
      }
      for (const sub of command.commands) visit(sub, [...path, sub.name()]);
    };
    visit(snapctl.buildProgram(), []);
  });
});
