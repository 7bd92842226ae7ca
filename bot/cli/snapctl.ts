#!/usr/bin/env node
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { hostname, userInfo } from 'node:os';
import { clientEnvSchema, loadDotEnv, parseEnv, redisUrlOf } from '../../shared/config.js';
import { SnapbotError, toErrorPayload, type ErrorPayload } from '../../shared/errors.js';
import type { JobProgress, JobResult } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
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
import { renderHosts, renderResult } from './render-text.js';

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
  withTarget(program.command('revert').description('revert the VM to a snapshot (destroys its current state)'), true).action(
    (options: TargetOptions) => runOperation(revertSnapshot, options, global()),
  );
  withTarget(program.command('delete').description('delete a snapshot'), true).action((options: TargetOptions) =>
    runOperation(deleteSnapshot, options, global()),
  );
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
