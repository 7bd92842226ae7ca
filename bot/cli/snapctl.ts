#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import nodeModule from 'node:module';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SnapbotError, toErrorPayload, type ErrorPayload } from '../../shared/errors.js';
import type { FleetRunOptions } from './fleet-commands.js';
import { addScheduleCommands } from './schedule-commands.js';
import type { GlobalOptions } from './session.js';
import type { GuardedOptions, TargetOptions } from './snapshot-commands.js';

/**
 * snapctl: the same operations as the Discord commands, for shells, scripts and cron.
 * Exit status 0 only on success; `--json` prints exactly one object with `ok`.
 *
 * This module declares the commands and nothing more: what a command does is imported
 * when it runs, so `snapctl --help` and `--version` load commander alone, and a command
 * loads BullMQ, ioredis and zod only when it talks to Redis (issue 13; a test checks it).
 */

/**
 * Node 22.1 and later can keep V8's compiled code of the modules loaded from here on (the
 * command's bundle chunk) on disk: about 15 % of a command's module loading, measured on
 * Node 24. Node 20 has no such thing. The cache is in the user's own folder, not in a
 * /tmp that another user could fill first; NODE_COMPILE_CACHE overrides it.
 */
function enableCompileCache(): void {
  const { enableCompileCache: enable } = nodeModule as { enableCompileCache?: (directory: string) => unknown };
  if (!enable || process.env.NODE_DISABLE_COMPILE_CACHE) return;
  try {
    enable(process.env.NODE_COMPILE_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'snapbot', 'node-compile-cache'));
  } catch {
    // No home folder (a container without a passwd entry): start without the cache.
  }
}

const snapshotCommands = () => import('./snapshot-commands.js');
const fleetCommands = () => import('./fleet-commands.js');

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** The CommanderError code that stops parsing at --version (its message is the version). */
const VERSION_REQUESTED = 'snapctl.version';

/** The longest wait Node's timers keep (about 24.8 days), in seconds. */
const MAX_TIMEOUT_SECONDS = Math.floor(2_147_483_647 / 1000);

/**
 * --timeout: seconds written in digits (`90`, `2.5`); not `1e3`, `0x10`, `Infinity` or
 * `10m`, which Number() would read or half-read.
 */
export function parseSeconds(value: string): number {
  const seconds = /^\d+(\.\d+)?$/.test(value) ? Number(value) : Number.NaN;
  if (!(seconds > 0)) throw new InvalidArgumentError('It must be a number of seconds greater than 0, in digits (for example 90 or 2.5).');
  if (seconds > MAX_TIMEOUT_SECONDS) throw new InvalidArgumentError(`It must be at most ${MAX_TIMEOUT_SECONDS} seconds (about 24 days).`);
  return seconds;
}

/** A count (--limit): a whole number of 1 or more, in digits. */
export function parseCount(value: string): number {
  const count = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!(count >= 1) || !Number.isSafeInteger(count)) throw new InvalidArgumentError('It must be a whole number of 1 or more, in digits (for example 20).');
  return count;
}

/** snapctl's version: the package.json above this file, in the checkout (dist/bot/cli) or in node_modules. */
export function packageVersion(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let folder = from; ; folder = dirname(folder)) {
    const file = join(folder, 'package.json');
    if (existsSync(file)) {
      const { name, version } = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown; version?: unknown };
      if (name === 'snapbot' && typeof version === 'string') return version;
    }
    if (dirname(folder) === folder) return 'unknown';
  }
}

function printFailure(error: ErrorPayload, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, ...error })}\n`);
  else process.stderr.write(`snapctl: ${error.code}: ${error.message}\n`);
}

export function buildProgram(): Command {
  const program = new Command('snapctl')
    .description('KVM snapshots through snapbot workers: create, list, info, revert, delete; hosts')
    // Before any subcommand is made, so each inherits it: `snapctl create --help` lists
    // --json and --timeout too (they are accepted after the subcommand as well).
    .configureHelp({ showGlobalOptions: true })
    .option('--json', 'print one JSON object (ok, and code + message on failure)')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the result').argParser(parseSeconds).default(600))
    .option('-V, --version', "print snapctl's version and exit")
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });
  // Not commander's .version(), which prints at once, before a --json that comes after
  // it is read: main prints it, plain or as JSON.
  program.on('option:version', () => {
    throw new CommanderError(0, VERSION_REQUESTED, packageVersion());
  });

  const global = () => program.opts<GlobalOptions>();
  const withTarget = (command: Command, nameRequired: boolean) => {
    command.requiredOption('--vm <name>', 'VM (libvirt domain) name').option('--host <id>', 'KVM host id (needed only when the VM name is on several hosts)');
    if (nameRequired) command.requiredOption('--name <snapshot>', 'snapshot name');
    return command;
  };

  withTarget(program.command('create').description('take a snapshot'), false)
    .option('--name <snapshot>', 'snapshot name (default: snap-YYYYMMDD-HHMMSS)')
    .addOption(new Option('--mode <mode>', 'disk-only: atomic external disk snapshot; full: memory + disk').choices(['disk-only', 'full']).default('disk-only'))
    .option('--description <text>', 'free text stored with the snapshot')
    .action(async (options: TargetOptions) => (await import('./create-command.js')).runCreate(options, global()));
  withTarget(program.command('list').description("list a VM's snapshots, newest first"), false).action(async (options: TargetOptions) =>
    (await snapshotCommands()).runList(options, global()),
  );
  withTarget(program.command('info').description('show one snapshot'), true).action(async (options: TargetOptions) =>
    (await snapshotCommands()).runInfo(options, global()),
  );
  for (const action of ['revert', 'delete'] as const) {
    withTarget(
      program
        .command(action)
        .description(action === 'revert' ? 'revert the VM to a snapshot (destroys its current state); waits for approval when the policy wants it' : 'delete a snapshot; waits for approval when the policy wants it'),
      true,
    )
      .option('--no-wait', 'open the approval request, print its id, and return')
      .option('--break-glass <reason>', 'run now without approval (only if the policy allows it; audited)')
      .action(async (options: GuardedOptions) => (await snapshotCommands()).runGuarded(action, options, global()));
  }
  program
    .command('audit')
    .description('who did what, newest first')
    .option('--vm <name>', 'only entries about this VM')
    .addOption(new Option('--limit <count>', 'how many entries').argParser(parseCount).default(50))
    .action(async (options: { vm?: string; limit: number }) => (await import('./audit-command.js')).runAudit(options, global()));
  const fleet = program.command('fleet').description('one snapshot or delete over many VMs on many hosts, with a preview and one summary');
  const targetHelp = "selector: VM globs (web-*), host:<id or glob>, all; !x excludes (quote it: 'web-* !web-canary')";
  fleet
    .command('snapshot')
    .description('snapshot every selected VM (preview; --yes runs it)')
    .requiredOption('--target <selector>', targetHelp)
    .option('--name <template>', 'snapshot name; {vm} {host} {date} {time} are filled in (default fleet-{date}-{time})')
    .addOption(new Option('--mode <mode>', 'disk-only or full').choices(['disk-only', 'full']).default('disk-only'))
    .option('--description <text>', 'free text stored with each snapshot')
    .option('--yes', 'go ahead after the preview')
    .option('--no-wait', 'when approval is needed: open the request, print the run id, and return')
    .action(async (options: FleetRunOptions) => {
      const { runFleet, newRun } = await fleetCommands();
      await runFleet(newRun('snapshot', options), options, global());
    });
  fleet
    .command('delete')
    .description('delete the named snapshot (or those matching a glob) on every selected VM (preview; --yes runs it)')
    .requiredOption('--target <selector>', targetHelp)
    .requiredOption('--name <name or glob>', 'snapshot name, or a glob such as pre-rollout-*')
    .option('--yes', 'go ahead after the preview')
    .option('--no-wait', 'open the approval request, print the run id, and return')
    .action(async (options: FleetRunOptions) => {
      const { runFleet, newRun } = await fleetCommands();
      await runFleet(newRun('delete', options), options, global());
    });
  fleet
    .command('list')
    .description('which selected VMs have which snapshots (from the hosts\' inventories)')
    .requiredOption('--target <selector>', targetHelp)
    .option('--name <glob>', 'only snapshots matching this name or glob')
    .action(async (options: { target: string; name?: string }) => (await fleetCommands()).runFleetList(options, global()));
  fleet
    .command('status <run-id>')
    .description("a fleet run's summary; --follow keeps watching until it ends")
    .option('--follow', 'watch until the run ends')
    .action(async (runId: string, options: { follow?: boolean }) => (await fleetCommands()).runFleetStatus(runId, options, global()));
  fleet
    .command('cancel <run-id>')
    .description('stop a fleet run: what has not started will not run; what runs finishes')
    .action(async (runId: string) => (await fleetCommands()).runFleetCancel(runId, global()));
  fleet
    .command('retry <run-id>')
    .description('a new run over the failed targets of a finished run (preview; --yes runs it)')
    .option('--yes', 'go ahead after the preview')
    .option('--no-wait', 'when approval is needed: open the request, print the run id, and return')
    // The retry keeps the run's own action: a retried delete deletes.
    .action(async (runId: string, options: Pick<FleetRunOptions, 'yes' | 'wait'>) => (await fleetCommands()).runFleet({ op: 'fleet-retry', runId }, options, global()));
  addScheduleCommands(program, { global });
  program
    .command('key')
    .description("this snapctl's public key, as the policy's operators list it (it signs every change snapctl asks for)")
    .action(async () => (await import('./key-command.js')).runKey(global()));
  program
    .command('hosts')
    .description('every KVM host that has reported: online, stale or offline; versions, capabilities, VMs, queue depth, last error')
    .action(async () => (await import('./hosts-command.js')).runHosts(global()));
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    // A command that printed its own failure (a fleet run with failures) has set it.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === VERSION_REQUESTED) {
        const version = error.message;
        process.stdout.write(json ? `${JSON.stringify({ ok: true, version })}\n` : `${version}\n`);
        return 0;
      }
      if (error.exitCode === 0) return 0; // --help
      if (json) printFailure({ code: 'VALIDATION', message: error.message.replace(/^error: /, '') }, true);
      return EXIT_USAGE;
    }
    const payload = toErrorPayload(error);
    printFailure(payload, json);
    return error instanceof SnapbotError && error.code === 'VALIDATION' ? EXIT_USAGE : EXIT_FAILURE;
  }
}

enableCompileCache();
process.exitCode = await main(process.argv.slice(2));
