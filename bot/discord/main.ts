#!/usr/bin/env node
import { botEnvSchema, loadDotEnv, parseEnv, redisUrlOf } from '../../shared/config.js';
import { SnapbotError } from '../../shared/errors.js';
import { createLogger } from '../../shared/logger.js';
import { loadPolicy } from '../../shared/policy.js';
import { SnapbotCore } from '../core/core.js';
import { startBot } from './bot.js';

/** `npm run bot`: the Discord front end, against REDIS_URL. */
async function main(): Promise<void> {
  loadDotEnv();
  const config = parseEnv(botEnvSchema);
  const logger = createLogger('snapbot-bot', config.LOG_LEVEL);
  const policy = loadPolicy(config.SNAPBOT_POLICY);
  // A long-running process: it rides out Redis restarts instead of giving up.
  const core = await SnapbotCore.connect({ redisUrl: redisUrlOf(config), prefix: config.SNAPBOT_PREFIX, logger, policy, redisReconnect: 'forever' });
  let bot;
  try {
    bot = await startBot({
      token: config.DISCORD_TOKEN,
      guildId: config.DISCORD_GUILD_ID,
      channelId: config.DISCORD_CHANNEL_ID,
      apiUrl: config.DISCORD_API_URL,
      jobTimeoutMs: config.BOT_JOB_TIMEOUT_MS,
      core,
      logger,
    });
  } catch (error) {
    await core.close();
    throw error;
  }
  const running = bot;
  const stop = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stopping the bot');
    void running
      .stop()
      .then(() => core.close())
      .then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  const message = error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`snapbot bot: ${message}\n`);
  process.exit(1);
});
