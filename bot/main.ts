#!/usr/bin/env node
import { join } from 'node:path';
import { botEnvSchema, controlEnvSchema, loadDotEnv, parseEnv, redisUrlOf } from '../shared/config.js';
import { dataDir, loadAuthoritySigner, OPERATOR_KEY_FILE } from '../shared/authority-keys.js';
import { SnapbotError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { readMetricsListen } from '../shared/metrics-config.js';
import type { MetricsServer } from '../shared/metrics-server.js';
import { loadPolicy } from '../shared/policy.js';
import { startControlServer } from './core/control-server.js';
import { SnapbotCore } from './core/core.js';
import { startHeadlessSweeper } from './core/headless-sweeper.js';
import { startControlMetrics } from './core/metrics.js';
import { startScheduleRunner, type ScheduleRunner } from './core/schedules/fire.js';
import { OperatorDirectory } from './core/operators.js';
import { startBot, type RunningBot } from './discord/bot.js';

/**
 * `npm run bot`: the control process, the one place where policy, approvals and
 * break-glass are decided and jobs are signed. It takes snapctl's signed requests, and
 * serves Discord too when DISCORD_TOKEN is set.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = parseEnv(controlEnvSchema);
  const discord = config.DISCORD_TOKEN ? parseEnv(botEnvSchema) : undefined;
  const metricsListen = readMetricsListen();
  const logger = createLogger('snapbot-bot', config.LOG_LEVEL);
  const policy = loadPolicy(config.SNAPBOT_POLICY);
  const signer = loadAuthoritySigner(config);
  const localAdministratorKey = !config.SNAPBOT_POLICY || policy.localAdministrator ? join(dataDir(config), `${OPERATOR_KEY_FILE}.pub`) : undefined;
  const directory = new OperatorDirectory(policy, localAdministratorKey);
  // A long-running process: it rides out Redis restarts instead of giving up.
  const core = await SnapbotCore.connect({ redisUrl: redisUrlOf(config), prefix: config.SNAPBOT_PREFIX, logger, policy, signer, redisReconnect: 'forever' });
  let bot: RunningBot | undefined;
  let control: Awaited<ReturnType<typeof startControlServer>> | undefined;
  let stopSweeper: (() => Promise<void>) | undefined;
  let schedules: ScheduleRunner | undefined;
  let metrics: MetricsServer | undefined;
  try {
    if (metricsListen) metrics = await startControlMetrics(core, metricsListen);
    control = await startControlServer(core, { directory });
    // Every control process fires schedules; BullMQ hands each firing to one of them.
    schedules = await startScheduleRunner(core, { jobTimeoutMs: config.BOT_JOB_TIMEOUT_MS });
    if (discord) {
      bot = await startBot({
        token: discord.DISCORD_TOKEN,
        guildId: discord.DISCORD_GUILD_ID,
        channelId: discord.DISCORD_CHANNEL_ID,
        apiUrl: discord.DISCORD_API_URL,
        jobTimeoutMs: discord.BOT_JOB_TIMEOUT_MS,
        core,
        logger,
      });
    } else {
      // Discord's bot sweeps approvals itself; without it, this process must, or requests would outlive their expiry.
      stopSweeper = startHeadlessSweeper(core, { jobTimeoutMs: config.BOT_JOB_TIMEOUT_MS });
    }
  } catch (error) {
    await schedules?.close();
    await control?.close();
    await metrics?.close();
    await core.close();
    throw error;
  }
  logger.info(
    { key: signer.keyId, operators: policy.operators.length, localAdministrator: localAdministratorKey !== undefined, discord: discord !== undefined },
    'control process ready',
  );
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stopping the control process');
    // Bounded at every step: a stop must end even while Redis is away or requests wait for approvals.
    const within = <T>(work: Promise<T> | undefined, ms: number) => Promise.race([work, new Promise((resolve) => setTimeout(resolve, ms))]);
    void (async () => {
      await within(bot?.stop(), 10_000);
      await within(stopSweeper?.(), 5_000);
      await within(control?.close(), 15_000);
      await within(schedules?.close(), 10_000);
      await within(metrics?.close(), 2_000);
      await core.close();
      process.exit(0);
    })();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  const message = error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`snapbot bot: ${message}\n`);
  process.exit(1);
});
