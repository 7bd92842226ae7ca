#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { clientEnvSchema, loadDotEnv, parseEnv, redisUrlOf, type ClientConfig } from '../../shared/config.js';
import type { ControlOperation, ControlProgress } from '../../shared/control.js';
import { SnapbotError, toErrorPayload, type ErrorPayload } from '../../shared/errors.js';
import { jobResultSchema, type JobProgress, type JobResult } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { formatSshEd25519 } from '../../shared/ssh-keys.js';
import { approvalRequestSchema, botOnline } from '../core/approvals.js';
import { readAudit } from '../core/audit.js';
import { SnapbotCore } from '../core/core.js';
import { readHostsOverview } from '../core/hosts.js';
import { listSnapshots, snapshotInfo, type OperationOptions, type OperationRequest } from '../core/snapshots.js';
import { fleetList, fleetOutcome, fleetPlanSchema, fleetSummary, watchFleetRun, type FleetSummary } from '../core/fleet/index.js';
import { callControl } from './control-client.js';
import { loadSnapctlSigner, snapctlKeyPath } from './operator-key.js';
import { renderFleetList, renderFleetPreview, renderFleetProgress, renderFleetSummary } from './render-fleet.js';
import { ProgressLine } from './progress-line.js';
import { renderAudit, renderHosts, renderResult } from './render-text.js';
import { addScheduleCommands } from './schedule-commands.js';

/**
 * snapctl: the same operations as the Discord commands, for shells, scripts and cron.
 * Exit status 0 only on success; `--json` prints exactly one object with `ok`.
 */

function userName(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`; // no passwd entry in some containers
  }
}

interface GlobalOptions {
  json?: boolean;
  timeout: number;
}

interface TargetOptions {
  vm: string;
  host?: string;
  name?: string;
  mode?: string;
  description?: string;
}

interface GuardedOptions extends TargetOptions {
  name: string;
  /** commander's negatable --no-wait. */
  wait: boolean;
  breakGlass?: string;
}

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

function clientConfig(): ClientConfig {
  loadDotEnv();
  return parseEnv(clientEnvSchema);
}

/** A connection for reads. snapctl holds no signing key and no policy: changes go to the control process. */
async function withCore<T>(work: (core: SnapbotCore, config: ClientConfig) => Promise<T>): Promise<T> {
  const config = clientConfig();
  const core = await SnapbotCore.connect({
    redisUrl: redisUrlOf(config),
    prefix: config.SNAPBOT_PREFIX,
    // snapctl's own default is warn; an empty LOG_LEVEL means unset, like every variable.
    logger: createLogger('snapctl', process.env.LOG_LEVEL?.trim() ? config.LOG_LEVEL : 'warn'),
  });
  try {
    return await work(core, config);
  } finally {
    await core.close();
  }
}

/**
 * Sends a change to the control process, signed with this user's key, printing its
 * progress on stderr (on a terminal, with the time it has been running).
 */
async function requestChange(core: SnapbotCore, config: ClientConfig, operation: ControlOperation, global: GlobalOptions): Promise<unknown> {
  const line = new ProgressLine(process.stderr, { quiet: Boolean(global.json) });
  try {
    return await callControl(core, loadSnapctlSigner(config), operation, {
      timeoutMs: global.timeout * 1000,
      onProgress: (progress: ControlProgress) => {
        if (progress.type === 'queued') line.update(`queued job ${progress.jobId} on host ${progress.host}`);
        else if (progress.type === 'job') line.update(`${progress.phase}: ${progress.message}`);
        else line.update(progress.text);
      },
    });
  } finally {
    line.stop();
  }
}

function printResult(result: JobResult, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  else process.stdout.write(`${renderResult(result)}\n`);
}

type Read = (core: SnapbotCore, request: OperationRequest, options: OperationOptions) => Promise<JobResult>;

/** list and info: read from the host directly (reads need no signature). */
async function runRead(read: Read, target: TargetOptions, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  const line = new ProgressLine(process.stderr, { quiet: json });
  const options: OperationOptions = {
    timeoutMs: global.timeout * 1000,
    onQueued: (jobId, host) => line.update(`queued job ${jobId} on host ${host}`),
    onProgress: (progress: JobProgress) => line.update(`${progress.phase}: ${progress.message}`),
  };
  let result: JobResult;
  try {
    result = await withCore((core) => read(core, { ...target, requestedBy: 'snapctl' }, options));
  } finally {
    line.stop();
  }
  printResult(result, json);
}

async function runCreate(target: TargetOptions, global: GlobalOptions): Promise<void> {
  const { vm, host, name, mode, description } = target;
  const answer = await withCore((core, config) => requestChange(core, config, { op: 'create', vm, host, name, mode, description }, global));
  printResult(jobResultSchema.parse(answer), Boolean(global.json));
}

function say(json: boolean, text: string): void {
  if (!json) process.stderr.write(`${text}\n`);
}

const guardedAnswerSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('done'), result: jobResultSchema }),
  z.object({ kind: z.literal('pending'), request: approvalRequestSchema }),
]);

/**
 * Revert and delete follow the control process's policy: when it wants approval, the
 * request is opened (a bot posts it in the channel) and snapctl waits for the decision
 * and the result; --no-wait prints the request id instead; --break-glass runs at once
 * where the policy allows it.
 */
async function runGuarded(action: 'revert' | 'delete', options: GuardedOptions, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  await withCore(async (core, config) => {
    if (options.breakGlass !== undefined) say(json, `BREAK-GLASS: asking to ${action} without approval; this is audited.`);
    else if (options.wait && !(await botOnline(core))) say(json, 'No Discord bot is online right now: an approval request is posted when one starts.');
    const answer = guardedAnswerSchema.parse(
      await requestChange(core, config, { op: action, vm: options.vm, host: options.host, name: options.name, breakGlass: options.breakGlass, wait: options.wait }, global),
    );
    if (answer.kind === 'done') {
      printResult(answer.result, json);
      return;
    }
    const pending = answer.request;
    if (json) process.stdout.write(`${JSON.stringify({ ok: true, status: 'pending', requestId: pending.id, expiresAt: pending.expiresAt })}\n`);
    else process.stdout.write(`Approval requested: ${pending.id} (expires ${pending.expiresAt}).\n`);
  });
}

interface FleetRunOptions {
  target: string;
  name?: string;
  mode?: string;
  description?: string;
  yes?: boolean;
  /** commander's negatable --no-wait. */
  wait: boolean;
}

/** Prints a run's final summary; a run where anything failed or did not run is a failure (PARTIAL, from core's outcome). */
function printFleetOutcome(summary: FleetSummary, json: boolean): void {
  const { complete, incomplete } = fleetOutcome(summary);
  if (json) {
    const { plan, targets, ...rest } = summary;
    const payload = {
      ok: complete,
      ...(complete ? {} : { code: 'PARTIAL', message: `${incomplete} of ${summary.total} target(s) of fleet run ${summary.runId} did not complete.` }),
      ...rest,
      action: plan.action,
      selector: plan.selector,
      targets: targets.map((target) => ({ host: target.host, vm: target.vm, snapshot: target.snapshot, lost: target.lost, ...target.state })),
    };
    process.stdout.write(`${JSON.stringify(payload)}\n`);
  } else {
    process.stdout.write(`${renderFleetSummary(summary)}\n`);
  }
  if (!complete) process.exitCode = EXIT_FAILURE;
}

/** Follows a run to its end, with a progress line on stderr at most every second. */
async function followFleetRun(core: SnapbotCore, runId: string, json: boolean): Promise<FleetSummary> {
  let lastPrinted = 0;
  say(json, `Following fleet run ${runId}; Ctrl-C stops following, not the run (snapctl fleet cancel ${runId} stops it).`);
  return watchFleetRun(core, runId, {
    onUpdate: (summary) => {
      if (Date.now() - lastPrinted < 1000 && summary.status !== 'finished') return;
      lastPrinted = Date.now();
      say(json, renderFleetProgress(summary));
    },
  });
}

const confirmAnswerSchema = z.object({ kind: z.enum(['started', 'pending']), status: z.string(), expiresAt: z.string().nullable() });

/**
 * A fleet snapshot or delete: the preview first (planned by the control process); with
 * --yes it is confirmed (and waits for approval when the policy wants it, a bot posting
 * the request), then followed to the end.
 */
async function runFleet(plan: ControlOperation, options: Pick<FleetRunOptions, 'yes' | 'wait'>, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  await withCore(async (core, config) => {
    const preview = fleetPlanSchema.parse(await requestChange(core, config, plan, global));
    if (!options.yes) {
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, started: false, preview })}\n`);
      else process.stdout.write(`${renderFleetPreview(preview)}\nNothing was started: run again with --yes to go ahead.\n`);
      return;
    }
    say(json, renderFleetPreview(preview));
    if (preview.approval && options.wait && !(await botOnline(core))) say(json, 'No Discord bot is online right now: the request is posted when one starts.');
    const confirmed = confirmAnswerSchema.parse(await requestChange(core, config, { op: 'fleet-confirm', runId: preview.id, wait: options.wait }, global));
    if (confirmed.kind === 'pending') {
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, started: false, status: 'pending', runId: preview.id, expiresAt: confirmed.expiresAt })}\n`);
      else process.stdout.write(`Approval requested for fleet run ${preview.id} (expires ${confirmed.expiresAt}).\n`);
      return;
    }
    printFleetOutcome(await followFleetRun(core, preview.id, json), json);
  });
}

function newRun(action: 'snapshot' | 'delete', options: FleetRunOptions): ControlOperation {
  return { op: 'fleet-plan', action, target: options.target, name: options.name, mode: options.mode, description: options.description };
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
    .action((options: TargetOptions) => runCreate(options, global()));
  withTarget(program.command('list').description("list a VM's snapshots, newest first"), false).action((options: TargetOptions) =>
    runRead(listSnapshots, options, global()),
  );
  withTarget(program.command('info').description('show one snapshot'), true).action((options: TargetOptions) =>
    runRead(snapshotInfo, options, global()),
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
      .action((options: GuardedOptions) => runGuarded(action, options, global()));
  }
  program
    .command('audit')
    .description('who did what, newest first')
    .option('--vm <name>', 'only entries about this VM')
    .addOption(new Option('--limit <count>', 'how many entries').argParser(parseCount).default(50))
    .action(async (options: { vm?: string; limit: number }) => {
      const entries = await withCore((core) => readAudit(core, { vm: options.vm, limit: options.limit }));
      if (global().json) process.stdout.write(`${JSON.stringify({ ok: true, entries })}\n`);
      else process.stdout.write(`${renderAudit(entries)}\n`);
    });
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
    .action((options: FleetRunOptions) => runFleet(newRun('snapshot', options), options, global()));
  fleet
    .command('delete')
    .description('delete the named snapshot (or those matching a glob) on every selected VM (preview; --yes runs it)')
    .requiredOption('--target <selector>', targetHelp)
    .requiredOption('--name <name or glob>', 'snapshot name, or a glob such as pre-rollout-*')
    .option('--yes', 'go ahead after the preview')
    .option('--no-wait', 'open the approval request, print the run id, and return')
    .action((options: FleetRunOptions) => runFleet(newRun('delete', options), options, global()));
  fleet
    .command('list')
    .description('which selected VMs have which snapshots (from the hosts\' inventories)')
    .requiredOption('--target <selector>', targetHelp)
    .option('--name <glob>', 'only snapshots matching this name or glob')
    .action(async (options: { target: string; name?: string }) => {
      const rows = await withCore((core) => fleetList(core, options));
      if (global().json) process.stdout.write(`${JSON.stringify({ ok: true, vms: rows })}\n`);
      else process.stdout.write(`${renderFleetList(rows)}\n`);
    });
  fleet
    .command('status <run-id>')
    .description("a fleet run's summary; --follow keeps watching until it ends")
    .option('--follow', 'watch until the run ends')
    .action(async (runId: string, options: { follow?: boolean }) => {
      const json = Boolean(global().json);
      await withCore(async (core) => {
        const summary = options.follow ? await followFleetRun(core, runId, json) : await fleetSummary(core, runId);
        if (!summary) throw new SnapbotError('VALIDATION', `No fleet run ${runId} (runs are kept 7 days).`);
        printFleetOutcome(summary, json);
      });
    });
  fleet
    .command('cancel <run-id>')
    .description('stop a fleet run: what has not started will not run; what runs finishes')
    .action(async (runId: string) => {
      const json = Boolean(global().json);
      await withCore(async (core, config) => {
        const run = z.object({ status: z.string() }).parse(await requestChange(core, config, { op: 'fleet-cancel', runId }, global()));
        if (run.status === 'discarded') {
          // A preview or an approval request: nothing had been queued.
          if (json) process.stdout.write(`${JSON.stringify({ ok: true, runId, status: run.status })}\n`);
          else process.stdout.write(`Fleet run ${runId} withdrawn before it started; nothing was queued.\n`);
          return;
        }
        say(json, `Fleet run ${runId} is ${run.status}.`);
        printFleetOutcome(await followFleetRun(core, runId, json), json);
      });
    });
  fleet
    .command('retry <run-id>')
    .description('a new run over the failed targets of a finished run (preview; --yes runs it)')
    .option('--yes', 'go ahead after the preview')
    .option('--no-wait', 'when approval is needed: open the request, print the run id, and return')
    // The retry keeps the run's own action: a retried delete deletes.
    .action((runId: string, options: Pick<FleetRunOptions, 'yes' | 'wait'>) => runFleet({ op: 'fleet-retry', runId }, options, global()));
  addScheduleCommands(program, { global, withCore, requestChange });
  program
    .command('key')
    .description("this snapctl's public key, as the policy's operators list it (it signs every change snapctl asks for)")
    .action(() => {
      const config = clientConfig();
      const signer = loadSnapctlSigner(config);
      const { path, local } = snapctlKeyPath(config);
      const line = formatSshEd25519(signer.publicKey, `snapctl@${userName()}`);
      if (global().json) process.stdout.write(`${JSON.stringify({ ok: true, key: line, keyId: signer.keyId, path, localAdministrator: local })}\n`);
      else
        process.stdout.write(
          `${line}\n# key ${signer.keyId}, ${path}${local ? ' (this checkout\'s local administrator key)' : ''}\n# add it to the policy: operators: [{ name: …, key: "<the line above>", roles: […] }]\n`,
        );
    });
  program
    .command('hosts')
    .description('every KVM host that has reported: online, stale or offline; versions, capabilities, VMs, queue depth, last error')
    .action(async () => {
      const { hosts, summary } = await withCore((core) => readHostsOverview(core));
      if (global().json) process.stdout.write(`${JSON.stringify({ ok: true, summary, hosts })}\n`);
      else process.stdout.write(`${renderHosts({ hosts, summary })}\n`);
    });
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

process.exitCode = await main(process.argv.slice(2));
