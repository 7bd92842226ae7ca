import { Client, DiscordjsError, DiscordjsErrorCodes, Events, GatewayIntentBits } from 'discord.js';
import { SnapbotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SnapbotCore } from '../core/core.js';
import { InventoryView } from '../core/suggest.js';
import { ChannelMessenger, DISCORD_CHANNEL_BUDGET, type ChannelBudget } from './channel-messenger.js';
import { COMMAND_DEFINITIONS } from './commands/index.js';
import type { BotContext } from './context.js';
import { FleetWatchers } from './fleet-watchers.js';
import { startSweeper } from './sweeper.js';
import { routeInteraction } from './interactions/route-interaction.js';

export interface BotOptions {
  token: string;
  /** Commands go to this guild (instant) or, without it, globally. */
  guildId?: string | undefined;
  channelId?: string | undefined;
  /** REST base override (`DISCORD_API_URL`): tests and proxies. */
  apiUrl?: string | undefined;
  jobTimeoutMs: number;
  editIntervalMs?: number;
  /** How often expired approvals are closed and snapctl's requests posted. */
  sweepIntervalMs?: number;
  /** Posts and edits per channel and window (Discord's buckets by default). */
  channelBudget?: ChannelBudget;
  core: SnapbotCore;
  logger: Logger;
}

export interface RunningBot {
  client: Client;
  stop(): Promise<void>;
}

/** The discord.js client, configured as the bot uses it (tests build theirs here too). */
export function createDiscordClient(apiUrl?: string): Client {
  return new Client({ intents: [GatewayIntentBits.Guilds], ...(apiUrl ? { rest: { api: apiUrl } } : {}) });
}

/**
 * Logs in, registers the slash commands (a bulk overwrite, so doing it on every start
 * is idempotent) and answers interactions until stopped.
 */
export async function startBot(options: BotOptions): Promise<RunningBot> {
  const client = createDiscordClient(options.apiUrl);
  const context: BotContext = {
    core: options.core,
    inventory: new InventoryView(options.core),
    logger: options.logger,
    jobTimeoutMs: options.jobTimeoutMs,
    channelId: options.channelId,
    editIntervalMs: options.editIntervalMs ?? 1_000,
    messenger: new ChannelMessenger(client, options.logger, options.channelBudget ?? DISCORD_CHANNEL_BUDGET),
    fleetWatchers: new FleetWatchers(),
  };
  client.on(Events.InteractionCreate, (interaction) => void routeInteraction(interaction, context));
  client.on(Events.ShardDisconnect, (event, shard) => options.logger.warn({ code: event.code, shard }, 'gateway disconnected'));
  client.on(Events.ShardResume, (shard, replayed) => options.logger.info({ shard, replayed }, 'gateway resumed'));
  client.on(Events.Error, (error) => options.logger.error({ err: error }, 'discord client error'));

  const ready = new Promise<void>((resolve, reject) => {
    client.once(Events.ClientReady, (readyClient) => {
      const definitions = [...COMMAND_DEFINITIONS];
      const registering = options.guildId
        ? readyClient.application.commands.set(definitions, options.guildId)
        : readyClient.application.commands.set(definitions);
      registering.then(
        (registered) => {
          options.logger.info({ commands: registered.size, guild: options.guildId ?? 'global', user: readyClient.user.tag }, 'bot ready');
          resolve();
        },
        reject,
      );
    });
  });
  let stopSweeper = () => {};
  try {
    await client.login(options.token);
    await ready;
    stopSweeper = startSweeper(context, options.sweepIntervalMs);
  } catch (error) {
    await client.destroy();
    if (error instanceof DiscordjsError && error.code === DiscordjsErrorCodes.TokenInvalid) {
      throw new SnapbotError('VALIDATION', 'DISCORD_TOKEN was rejected by Discord (TokenInvalid): copy the bot token again from the developer portal.');
    }
    throw error;
  }
  return {
    client,
    async stop() {
      stopSweeper();
      // Runs go on without us; their last state is shown, and the next bot adopts them.
      await context.fleetWatchers.stop();
      context.messenger.close();
      await client.destroy();
    },
  };
}
