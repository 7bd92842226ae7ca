import type { SlashCommand } from '../context.js';
import { fleetCommand } from './fleet.js';
import { hostsCommand } from './hosts.js';
import { snapshotCommand } from './snapshot.js';

/** Every slash command the bot registers and answers. */
export const SLASH_COMMANDS: readonly SlashCommand[] = [snapshotCommand, hostsCommand, fleetCommand];

export const COMMAND_DEFINITIONS = SLASH_COMMANDS.map((command) => command.data);
