import { Client, DiscordjsError, DiscordjsErrorCodes, Events, GatewayIntentBits, type Guild } from 'discord.js';
import { SnapbotError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import type { SnapbotCore } from '../core/core.js';
import { resolvePolicyRoleNames } from '../core/policy-roles.js';
import { InventoryView } from '../core/suggest.js';
import { ChannelMessenger, DISCORD_CHANNEL_BUDGET, type ChannelBudget } from './channel-messenger.js';
import { COMMAND_DEFINITIONS } from './commands/index.js';
import type { BotContext } from './context.js';
import { FleetWatchers } from './fleet-watchers.js';
import { startSweeper } from './sweeper.js';
import { routeInteraction } from './interactions/route-interaction.js';

export interface BotOptions {
  token: string;
  /**
   * The one server snapbot serves (DISCORD_GUILD_ID): its commands are registered there,
   * the policy's role names are resolved among its roles, and interactions from any other
   * server or from DMs are refused.
   */
  guildId: string;
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
  client.on(Events.InteractionCreate, (interaction) => void routeInteraction(interaction, context, options.guildId));
  client.on(Events.ShardDisconnect, (event, shard) => options.logger.warn({ code: event.code, shard }, 'gateway disconnected'));
  client.on(Events.ShardResume, (shard, replayed) => options.logger.info({ shard, replayed }, 'gateway resumed'));
  client.on(Events.Error, (error) => options.logger.error({ err: error }, 'discord client error'));

  const ready = new Promise<void>((resolve, reject) => {
    client.once(Events.ClientReady, (readyClient) => {
      void (async () => {
        const guild = readyClient.guilds.cache.get(options.guildId);
        if (!guild) {
          throw new SnapbotError('VALIDATION', `DISCORD_GUILD_ID ${options.guildId}: the bot is not a member of that server; invite it there, or correct the id.`);
        }
        await resolvePolicyRoles(guild, options);
        const registered = await readyClient.application.commands.set([...COMMAND_DEFINITIONS], options.guildId);
        options.logger.info({ commands: registered.size, guild: options.guildId, user: readyClient.user.tag }, 'bot ready');
      })().then(resolve, reject);
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

/**
 * Rewrites the policy's role names into the ids of the served server's roles, once, at
 * ready: a warning per name (ids are what a policy should hold), an error per name that
 * matches no role or several (it then matches nobody). The core's policy is replaced by
 * the resolved one before `startBot` returns; an interaction in the moment before finds
 * the names matching nobody yet (only ids match), never more than the policy allows.
 */
async function resolvePolicyRoles(guild: Guild, options: BotOptions): Promise<void> {
  const roles = await guild.roles.fetch();
  const { policy, names } = resolvePolicyRoleNames(options.core.policy, roles.map((role) => ({ id: role.id, name: role.name })));
  for (const { name, ids } of names) {
    if (ids.length === 1) {
      options.logger.warn({ role: name, id: ids[0] }, `the policy names role "${name}" by name: it stands for role id ${ids[0]} of this server; write that id in the policy instead (names are deprecated)`);
    } else {
      const why = ids.length === 0 ? 'no role of this server has that name' : `${ids.length} roles of this server have that name (ids ${ids.join(', ')})`;
      options.logger.error({ role: name, ids }, `the policy names role "${name}", which matches nobody: ${why}; write the role's id in the policy`);
    }
  }
  options.core.options.policy = policy;
}
