#!/usr/bin/env node
import { REST, Routes } from 'discord.js';
import { botEnvSchema, loadDotEnv, parseEnv } from '../../shared/config.js';
import { SnapbotError } from '../../shared/errors.js';
import { COMMAND_DEFINITIONS } from './commands/index.js';

/**
 * `npm run register`: registers the slash commands without starting the bot — in
 * DISCORD_GUILD_ID when set (takes effect at once), else globally (may take up to an
 * hour to show). The bot also registers on every start; both are bulk overwrites.
 */
async function main(): Promise<void> {
  loadDotEnv();
  const config = parseEnv(botEnvSchema.pick({ DISCORD_TOKEN: true, DISCORD_APP_ID: true, DISCORD_GUILD_ID: true, DISCORD_API_URL: true }));
  const rest = new REST(config.DISCORD_API_URL ? { api: config.DISCORD_API_URL } : {}).setToken(config.DISCORD_TOKEN);
  const route = config.DISCORD_GUILD_ID
    ? Routes.applicationGuildCommands(config.DISCORD_APP_ID, config.DISCORD_GUILD_ID)
    : Routes.applicationCommands(config.DISCORD_APP_ID);
  const registered = (await rest.put(route, { body: COMMAND_DEFINITIONS })) as unknown[];
  process.stdout.write(
    `registered ${registered.length} commands (${COMMAND_DEFINITIONS.map((command) => `/${command.name}`).join(', ')}) ${
      config.DISCORD_GUILD_ID ? `in guild ${config.DISCORD_GUILD_ID}` : 'globally'
    }\n`,
  );
}

main().catch((error: unknown) => {
  const message = error instanceof SnapbotError ? `${error.code}: ${error.message}` : String(error);
  process.stderr.write(`snapbot register: ${message}\n`);
  process.exit(1);
});
