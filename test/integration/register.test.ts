import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDiscord } from '../fixtures/fake-discord/fake-discord.js';
import { guildFixture } from '../helpers/discord-bot.js';
import { runNode, spawnNode } from '../helpers/processes.js';
import { startTestRedis } from '../helpers/redis.js';
import { fileURLToPath } from 'node:url';

/** `npm run register` and `npm run bot` as processes, against the fake Discord. */
const REGISTER = fileURLToPath(new URL('../../dist/bot/discord/register.js', import.meta.url));
const BOT = fileURLToPath(new URL('../../dist/bot/main.js', import.meta.url));
const guild = guildFixture();
let fake: FakeDiscord;

beforeAll(async () => {
  fake = await FakeDiscord.start(guild.options);
});

afterAll(async () => {
  await fake?.stop();
});

const discordEnv = () => ({
  DISCORD_TOKEN: guild.options.token,
  DISCORD_APP_ID: guild.options.applicationId,
  DISCORD_GUILD_ID: guild.options.guildId,
  DISCORD_API_URL: fake.apiUrl,
});

describe('npm run register', () => {
  it('registers the commands in the guild', async () => {
    const result = await runNode(REGISTER, [], { ...discordEnv(), DISCORD_GUILD_ID: guild.options.guildId });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(`registered 4 commands (/snapshot, /hosts, /fleet, /schedule) in guild ${guild.options.guildId}\n`);
    expect((fake.registeredCommands('guild') as Array<{ name: string }>).map((command) => command.name)).toEqual(['snapshot', 'hosts', 'fleet', 'schedule']);
  });

  it('refuses to run without DISCORD_GUILD_ID (snapbot serves one guild), registering nothing globally', async () => {
    for (const entry of [REGISTER, BOT]) {
      const result = await runNode(entry, [], { ...discordEnv(), DISCORD_GUILD_ID: '' });
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('DISCORD_GUILD_ID is required: snapbot serves one guild and ignores every other');
    }
    expect(fake.registeredCommands('global')).toHaveLength(0);
  });

  it('names the variable when configuration is missing', async () => {
    const result = await runNode(REGISTER, [], { DISCORD_API_URL: fake.apiUrl });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/DISCORD_TOKEN.*required/);
    expect(result.stderr).toMatch(/DISCORD_APP_ID/);
  });
});

describe('npm run bot', () => {
  it('exits at once with a clear message when the token is wrong', async () => {
    const redis = await startTestRedis();
    try {
      const result = await runNode(BOT, [], { ...discordEnv(), DISCORD_TOKEN: 'wrong', REDIS_URL: redis.url });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe('snapbot bot: VALIDATION: DISCORD_TOKEN was rejected by Discord (TokenInvalid): copy the bot token again from the developer portal.\n');
    } finally {
      await redis.stop();
    }
  });

  it('names REDIS_URL when Redis cannot be reached, and waits for it instead of exiting', async () => {
    const bot = spawnNode(BOT, { ...discordEnv(), REDIS_URL: 'redis://127.0.0.1:1', LOG_LEVEL: 'info' });
    try {
      await bot.waitFor(/"code":"REDIS_UNAVAILABLE"[^\n]*Cannot reach Redis at redis:\/\/127\.0\.0\.1:1 \(set REDIS_URL/, 30_000);
      await bot.waitFor(/"attempt":3[^\n]*Redis is not reachable yet; waiting for it/, 30_000);
      expect(bot.child.exitCode).toBeNull();
    } finally {
      await bot.stop('SIGKILL');
    }
  });

  it('refuses an invalid policy file before connecting anywhere', async () => {
    const result = await runNode(BOT, [], { ...discordEnv(), SNAPBOT_POLICY: '/nonexistent/policy.yaml' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/SNAPBOT_POLICY: cannot read \/nonexistent\/policy.yaml/);
  });
});
