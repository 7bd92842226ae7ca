import { z } from 'zod';
import { jobResultSchema, type JobProgress, type JobResult } from '../../shared/jobs.js';
import { approvalRequestSchema, botOnline } from '../core/approvals.js';
import type { SnapbotCore } from '../core/core.js';
import { listSnapshots, snapshotInfo, type OperationOptions, type OperationRequest } from '../core/snapshots.js';
import { ProgressLine } from './progress-line.js';
import { printResult, requestChange, say, withCore, type GlobalOptions } from './session.js';

/** `snapctl list|info|revert|delete`: one VM's snapshots (create is in create-command.ts). */

export interface TargetOptions {
  vm: string;
  host?: string;
  name?: string;
  mode?: string;
  description?: string;
}

export interface GuardedOptions extends TargetOptions {
  name: string;
  /** commander's negatable --no-wait. */
  wait: boolean;
  breakGlass?: string;
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

export function runList(target: TargetOptions, global: GlobalOptions): Promise<void> {
  return runRead(listSnapshots, target, global);
}

export function runInfo(target: TargetOptions, global: GlobalOptions): Promise<void> {
  return runRead(snapshotInfo, target, global);
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
export async function runGuarded(action: 'revert' | 'delete', options: GuardedOptions, global: GlobalOptions): Promise<void> {
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
