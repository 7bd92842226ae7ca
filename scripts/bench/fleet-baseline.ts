import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastFakeHost } from './fleet-fake-hosts.js';
import { baseEnv, timeCommand } from './processes.js';

/**
 * The bare limit of parallel execution: the same fake virsh commands a fleet run needs,
 * started by `xargs -P N` (no Node, no Redis, no queue), one line per VM.
 */

const URI = '--connect=qemu:///system';

/** Quotes one argument for xargs's own input syntax (blanks and quotes need it). */
function xargsQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

/** The create a fleet job makes, as the worker's argv (with the job marker in the description). */
function createArgs(host: FastFakeHost, uuid: string, name: string, jobId: string): string[] {
  return [host.virshPath, URI, 'snapshot-create-as', `--domain=${uuid}`, `--name=${name}`, `--description=[snapbot job ${jobId}]`, '--disk-only', '--atomic'];
}

export interface BaselineRun {
  wallMs: number;
  invocations: number;
  failed: boolean;
  stderr: string;
}

/**
 * `xargs -P parallel` running one `snapshot-create-as` per VM of `hosts` (via `env`, so
 * that xargs starts each fake directly: one exec more, no shell).
 */
export async function xargsCreates(hosts: readonly FastFakeHost[], parallel: number, label: string, workDir: string): Promise<BaselineRun> {
  const lines: string[] = [];
  for (const host of hosts) {
    for (const vm of host.vms) lines.push(createArgs(host, vm.uuid, `${label}-${vm.name}`, `xargs-${label}`).map(xargsQuote).join(' '));
  }
  const file = join(workDir, `${label}.args`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const run = await timeCommand('xargs', ['-P', String(parallel), '-L', '1', '-a', file, 'env'], baseEnv());
  return { wallMs: run.wallMs, invocations: lines.length, failed: run.code !== 0, stderr: run.stderr.slice(0, 2000) };
}

/**
 * `xargs -P parallel` running, per VM, the virsh processes on a fleet job's critical path
 * as the worker sequences them today: `domname`, then one process that runs
 * `snapshot-create-as` and reads the snapshot back with `snapshot-dumpxml`
 * (worker/hypervisor/virsh-script.ts). One small sh per VM chains them.
 */
export async function xargsJobChains(hosts: readonly FastFakeHost[], parallel: number, label: string, workDir: string): Promise<BaselineRun> {
  const script = [
    'v=$1 u=$2 n=$3',
    `"$v" ${URI} domname --domain="$u" >/dev/null || exit 1`,
    // The worker's marks are left out: they cost a few bytes of output, no process.
    `"$v" ${URI} "'snapshot-create-as' '--domain=$u' '--name=$n' '--description=[snapbot job $n]' '--disk-only' '--atomic'
'snapshot-dumpxml' '--domain=$u' '--snapshotname=$n'" >/dev/null || exit 1`,
  ].join('\n');
  const lines: string[] = [];
  for (const host of hosts) {
    for (const vm of host.vms) lines.push([host.virshPath, vm.uuid, `${label}-${vm.name}`].map(xargsQuote).join(' '));
  }
  const file = join(workDir, `${label}.args`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const run = await timeCommand('xargs', ['-P', String(parallel), '-L', '1', '-a', file, 'sh', '-c', script, 'job-chain'], baseEnv());
  return { wallMs: run.wallMs, invocations: lines.length * 2, failed: run.code !== 0, stderr: run.stderr.slice(0, 2000) };
}
