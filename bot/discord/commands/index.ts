import type { SlashCommand } from '../context.js';
import { fleetCommand } from './fleet.js';
import { hostsCommand } from './hosts.js';
import { scheduleCommand } from './schedule.js';
import { snapshotCommand } from './snapshot.js';

/** Every slash command the bot registers and answers. */
export const SLASH_COMMANDS: readonly SlashCommand[] = [snapshotCommand, hostsCommand, fleetCommand, scheduleCommand];

export const COMMAND_DEFINITIONS = SLASH_COMMANDS.map((command) => command.data);
