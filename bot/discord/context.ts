import type {
  AutocompleteInteraction,
  ButtonInteraction,
  ChatInputCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import type { Logger } from '../../shared/logger.js';
import type { SnapbotCore } from '../core/core.js';
import type { InventoryView } from '../core/suggest.js';
import type { ChannelMessenger } from './channel-messenger.js';
import type { FleetWatchers } from './fleet-watchers.js';

/** What every command and button handler gets. */
export interface BotContext {
  core: SnapbotCore;
  inventory: InventoryView;
  logger: Logger;
  /** How long a command waits for its job. */
  jobTimeoutMs: number;
  /** Where long-running results go once the interaction token has expired. */
  channelId: string | undefined;
  /** Edits of one reply are at least this far apart. */
  editIntervalMs: number;
  /** Posts and edits channel messages: fitted to Discord's limits, paced per channel, never lost. */
  messenger: ChannelMessenger;
  /** The fleet runs whose summary message this process keeps up to date. */
  fleetWatchers: FleetWatchers;
}

/** A slash command: its builder output next to its handler (one module per command). */
export interface SlashCommand {
  data: RESTPostAPIChatInputApplicationCommandsJSONBody;
  execute(interaction: ChatInputCommandInteraction, context: BotContext): Promise<void>;
  autocomplete?(interaction: AutocompleteInteraction, context: BotContext): Promise<void>;
}

/** A button family: `parse` claims a custom id (or returns undefined), `run` answers the click. */
export interface ButtonHandler<T> {
  parse(customId: string): T | undefined;
  run(interaction: ButtonInteraction, parsed: T, context: BotContext): Promise<void>;
}
