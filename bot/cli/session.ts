import { clientEnvSchema, loadDotEnv, parseEnv, redisUrlOf, type ClientConfig } from '../../shared/config.js';
import type { ControlOperation, ControlProgress } from '../../shared/control.js';
import type { JobResult } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { SnapbotCore } from '../core/core.js';
import { callControl } from './control-client.js';
import { loadSnapctlSigner } from './operator-key.js';
import { ProgressLine } from './progress-line.js';
import { renderResult } from './render-text.js';

/**
 * What every snapctl command that talks to Redis shares: the configuration, one
 * connection, signed requests to the control process, and printing a result. Loaded only
 * when such a command runs (snapctl.ts imports it lazily), since it brings in BullMQ,
 * ioredis and zod.
 */

export interface GlobalOptions {
  json?: boolean;
  timeout: number;
}

export const EXIT_FAILURE = 1;

export function clientConfig(): ClientConfig {
  loadDotEnv();
  return parseEnv(clientEnvSchema);
}

/** A connection for reads. snapctl holds no signing key and no policy: changes go to the control process. */
export async function withCore<T>(work: (core: SnapbotCore, config: ClientConfig) => Promise<T>): Promise<T> {
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
export async function requestChange(core: SnapbotCore, config: ClientConfig, operation: ControlOperation, global: GlobalOptions): Promise<unknown> {
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

export function printResult(result: JobResult, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify({ ok: true, ...result })}\n`);
  else process.stdout.write(`${renderResult(result)}\n`);
}

/** A sentence for people on stderr; nothing with --json. */
export function say(json: boolean, text: string): void {
  if (!json) process.stderr.write(`${text}\n`);
}
