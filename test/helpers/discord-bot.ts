import { createLogger, type Logger } from '../../shared/logger.js';
import type { Policy } from '../../shared/policy.js';
import { startBot, type RunningBot } from '../../bot/discord/bot.js';
import { SnapbotCore } from '../../bot/core/core.js';
import { FakeDiscord, Permission, snowflake, type FakeDiscordOptions, type FakeGuild, type FakeUser } from '../fixtures/fake-discord/fake-discord.js';
import { testAuthority } from './authority.js';

/** A guild with an administrator, an operator role, and a plain member. */
export function guildFixture(overrides: Partial<FakeDiscordOptions> = {}) {
  const adminRole = { id: snowflake(), name: 'kvm-admins', permissions: Permission.Administrator };
  const operatorRole = { id: snowflake(), name: 'kvm-operators', permissions: Permission.SendMessages };
  const admin: FakeUser = { id: snowflake(), username: 'ada', roles: [adminRole.id] };
  const operator: FakeUser = { id: snowflake(), username: 'otto', roles: [operatorRole.id] };
  const viewer: FakeUser = { id: snowflake(), username: 'vera', roles: [] };
  const options: FakeDiscordOptions = {
    token: 'snapbot-test-token.AAAA.BBBB',
    applicationId: snowflake(),
    guildId: snowflake(),
    channelId: snowflake(),
    roles: [adminRole, operatorRole],
    users: [admin, operator, viewer],
    ...overrides,
  };
  return { options, admin, operator, viewer, adminRole, operatorRole };
}

/**
 * Another server that also added the (public) bot: its own Administrator, and roles
 * with the same names as the main guild's (`kvm-admins`, `kvm-operators`) but their own
 * ids. Pass it as `otherGuilds: [other.guild]` in the fake's options.
 */
export function otherGuildFixture() {
  const adminRole = { id: snowflake(), name: 'kvm-admins', permissions: Permission.Administrator };
  const operatorRole = { id: snowflake(), name: 'kvm-operators', permissions: Permission.SendMessages };
  const admin: FakeUser = { id: snowflake(), username: 'mallory', roles: [adminRole.id] };
  const operator: FakeUser = { id: snowflake(), username: 'oscar', roles: [operatorRole.id] };
  const guild: FakeGuild = { id: snowflake(), name: 'another server', channelId: snowflake(), roles: [adminRole, operatorRole], users: [admin, operator] };
  return { guild, admin, operator, adminRole, operatorRole };
}

export interface BotUnderTest {
  fake: FakeDiscord;
  bot: RunningBot;
  core: SnapbotCore;
  stop(): Promise<void>;
}

/** The bot as `npm run bot` builds it, in this process, against a fake Discord and a real Redis. */
export async function startBotUnderTest(params: {
  options: FakeDiscordOptions;
  redisUrl: string;
  prefix: string;
  policy?: Policy;
  jobTimeoutMs?: number;
  editIntervalMs?: number;
  sweepIntervalMs?: number;
  /** An already running fake Discord (a bot restart keeps the messages); stop() then leaves it running. */
  discord?: FakeDiscord;
  /** The bot's and core's logger (default: silent, or TEST_LOG_LEVEL). */
  logger?: Logger;
}): Promise<BotUnderTest> {
  const fake = params.discord ?? (await FakeDiscord.start(params.options));
  const logger = params.logger ?? createLogger('snapbot-bot-test', process.env.TEST_LOG_LEVEL ?? 'silent');
  const core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: params.redisUrl, prefix: params.prefix, logger, ...(params.policy ? { policy: params.policy } : {}) });
  const bot = await startBot({
    token: params.options.token,
    guildId: params.options.guildId,
    channelId: params.options.channelId,
    apiUrl: fake.apiUrl,
    jobTimeoutMs: params.jobTimeoutMs ?? 60_000,
    editIntervalMs: params.editIntervalMs ?? 1_000,
    ...(params.sweepIntervalMs ? { sweepIntervalMs: params.sweepIntervalMs } : {}),
    core,
    logger,
  });
  return {
    fake,
    bot,
    core,
    /**
     * Stops the bot, Redis client and (if started here) the fake, then fails when the
     * fake refused a request the test did not declare with `fake.expectRefusal(…)`:
     * Discord would have refused it too, even if the bot swallowed the error.
     */
    async stop() {
      await bot.stop();
      await core.close();
      if (!params.discord) await fake.stop();
      fake.assertNoUnexpectedRefusals();
    },
  };
}
