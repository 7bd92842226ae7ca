#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { hostname, userInfo } from 'node:os';
import { clientEnvSchema, loadDotEnv, parseEnv, redisUrlOf } from '../../shared/config.js';
import { SnapbotError, toErrorPayload, type ErrorPayload } from '../../shared/errors.js';
import type { JobProgress, JobResult } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { loadPolicy } from '../../shared/policy.js';
import { awaitApprovedResult, botOnline, openApprovalRequest } from '../core/approvals.js';
import { readAudit } from '../core/audit.js';
import { SnapbotCore } from '../core/core.js';
import { listHosts } from '../core/hosts.js';
import {
  createSnapshot,
  deleteSnapshot,
  listSnapshots,
  revertSnapshot,
  snapshotInfo,
  type OperationOptions,
  type OperationRequest,
} from '../core/snapshots.js';
import { renderAudit, renderHosts, renderResult } from './render-text.js';

/**
 * snapctl: the same operations as the Discord commands, for shells, scripts and cron.
 * Exit status 0 only on success; `--json` prints exactly one object with `ok`.
 */

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

function parseSeconds(value: string): number {
  const seconds = Number(value);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return seconds;
}

function requester(): string {
  let user = 'unknown';
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry in some containers */
  }
  return `snapctl:${user}@${hostname()}`;
}

function printFailure(error: ErrorPayload, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: false, ...error })}\n`);
  else process.stderr.write(`snapctl: ${error.code}: ${error.message}\n`);
}

async function withCore<T>(work: (core: SnapbotCore) => Promise<T>): Promise<T> {
  loadDotEnv();
  const config = parseEnv(clientEnvSchema);
  const core = await SnapbotCore.connect({
    redisUrl: redisUrlOf(config),
    prefix: config.SNAPBOT_PREFIX,
    logger: createLogger('snapctl', process.env.LOG_LEVEL ?? 'warn'),
    policy: loadPolicy(config.SNAPBOT_POLICY),
  });
  try {
    return await work(core);
  } finally {
    await core.close();
  }
}

type Operation = (core: SnapbotCore, request: OperationRequest, options: OperationOptions) => Promise<JobResult>;

async function runOperation(operation: Operation, target: TargetOptions, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  const request: OperationRequest = { ...target, requestedBy: requester() };
  const options: OperationOptions = {
    timeoutMs: global.timeout * 1000,
    onQueued: (jobId, host) => {
      if (!json) process.stderr.write(`queued job ${jobId} on host ${host}\n`);
    },
    onProgress: (progress: JobProgress) => {
      if (!json) process.stderr.write(`${progress.phase}: ${progress.message}\n`);
    },
  };
  const result = await withCore((core) => operation(core, request, options));
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  else process.stdout.write(`${renderResult(result)}\n`);
}

function say(json: boolean, text: string): void {
  if (!json) process.stderr.write(`${text}\n`);
}

/**
 * Revert and delete follow the policy: when it wants approval, snapctl opens the request
 * (a bot posts it in the channel) and waits for the decision and the result; --no-wait
 * prints the request id instead; --break-glass runs at once where the policy allows it.
 */
async function runGuarded(action: 'revert' | 'delete', options: GuardedOptions, global: GlobalOptions): Promise<void> {
  const json = Boolean(global.json);
  const timeoutMs = global.timeout * 1000;
  const operation = action === 'revert' ? revertSnapshot : deleteSnapshot;
  const request: OperationRequest = { vm: options.vm, host: options.host, name: options.name, requestedBy: requester() };
  const printResult = (result: JobResult) => {
    if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
    else process.stdout.write(`${renderResult(result)}\n`);
  };
  await withCore(async (core) => {
    const direct = (extra: Partial<OperationRequest>) =>
      operation(core, { ...request, ...extra }, { timeoutMs, onQueued: (jobId, host) => say(json, `queued job ${jobId} on host ${host}`) });
    if (options.breakGlass !== undefined) {
      say(json, `BREAK-GLASS: running ${action} without approval; this is audited.`);
      printResult(await direct({ breakGlass: { reason: options.breakGlass } }));
      return;
    }
    const opened = await openApprovalRequest(
      core,
      { action, vm: options.vm, host: options.host, name: options.name, requester: { id: requester(), userId: null, displayName: requester() }, origin: 'snapctl' },
      { timeoutMs },
    );
    if (opened.kind === 'not-needed') {
      printResult(await direct({}));
      return;
    }
    const { request: pending } = opened;
    if (!options.wait) {
      if (json) process.stdout.write(`${JSON.stringify({ ok: true, status: 'pending', requestId: pending.id, expiresAt: pending.expiresAt })}\n`);
      else process.stdout.write(`Approval requested: ${pending.id} (expires ${pending.expiresAt}).\n`);
      return;
    }
    say(json, `Approval requested: ${pending.id}; needs ${pending.required} approval(s) from ${pending.approvers.join(', ')} by ${pending.expiresAt}. Waiting…`);
    if (!(await botOnline(core))) say(json, 'No Discord bot is online right now: the request is posted when one starts.');
    printResult(
      await awaitApprovedResult(core, pending, {
        timeoutMs,
        onApproved: (decided) => say(json, `Approved by ${decided.approvals.length} of ${pending.required}; running on ${pending.host}…`),
      }),
    );
  });
}

export function buildProgram(): Command {
  const program = new Command('snapctl')
    .description('KVM snapshots through snapbot workers: create, list, info, revert, delete; hosts')
    .option('--json', 'print one JSON object (ok, and code + message on failure)')
    .addOption(new Option('--timeout <seconds>', 'how long to wait for the result').argParser(parseSeconds).default(600))
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (text) => process.stderr.write(text) });

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
    .action((options: TargetOptions) => runOperation(createSnapshot, options, global()));
  withTarget(program.command('list').description("list a VM's snapshots, newest first"), false).action((options: TargetOptions) =>
    runOperation(listSnapshots, options, global()),
  );
  withTarget(program.command('info').description('show one snapshot'), true).action((options: TargetOptions) =>
    runOperation(snapshotInfo, options, global()),
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
    .addOption(new Option('--limit <count>', 'how many entries').argParser((value) => Number.parseInt(value, 10)).default(50))
    .action(async (options: { vm?: string; limit: number }) => {
      const entries = await withCore((core) => readAudit(core, { vm: options.vm, limit: options.limit }));
      if (global().json) process.stdout.write(`${JSON.stringify({ ok: true, entries })}\n`);
      else process.stdout.write(`${renderAudit(entries)}\n`);
    });
  program
    .command('hosts')
    .description('every KVM host that has reported: status, versions, capabilities, VMs')
    .action(async () => {
      const hosts = await withCore((core) => listHosts(core));
      if (global().json) process.stdout.write(`${JSON.stringify({ ok: true, hosts })}\n`);
      else process.stdout.write(`${renderHosts(hosts)}\n`);
    });
  return program;
}

async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return 0; // --help, --version
      if (json) printFailure({ code: 'VALIDATION', message: error.message.replace(/^error: /, '') }, true);
      return EXIT_USAGE;
    }
    const payload = toErrorPayload(error);
    printFailure(payload, json);
    return error instanceof SnapbotError && error.code === 'VALIDATION' ? EXIT_USAGE : EXIT_FAILURE;
  }
}

process.exitCode = await main(process.argv.slice(2));
