import { jobResultSchema } from '../../shared/jobs.js';
import type { TargetOptions } from './snapshot-commands.js';
import { printResult, requestChange, withCore, type GlobalOptions } from './session.js';

/**
 * `snapctl create`: apart from the other snapshot commands, because it is the one run in
 * loops and cron jobs, and this way it loads none of their code (approvals, reads).
 */
export async function runCreate(target: TargetOptions, global: GlobalOptions): Promise<void> {
  const { vm, host, name, mode, description } = target;
  const answer = await withCore((core, config) => requestChange(core, config, { op: 'create', vm, host, name, mode, description }, global));
  printResult(jobResultSchema.parse(answer), Boolean(global.json));
}
