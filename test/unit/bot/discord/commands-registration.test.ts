import { describe, expect, it } from 'vitest';
import { COMMAND_DEFINITIONS } from '../../../../bot/discord/commands/index.js';
import { commandSize, commandsRefusal } from '../../../fixtures/fake-discord/command-rules.js';
import { bulkCommandsSchema } from '../../../fixtures/fake-discord/route-schemas.js';

/**
 * The bot's own commands against Discord's rules for a bulk registration: one refused
 * option refuses every command, so no slash command would exist for anyone.
 */
describe('the registered commands', () => {
  it('are a body Discord accepts for a guild and globally', () => {
    const body = bulkCommandsSchema.parse(COMMAND_DEFINITIONS);
    expect(commandsRefusal(body, 'guild')).toBeNull();
    expect(commandsRefusal(body, 'global')).toBeNull();
  });

  it('put every required option before the optional ones', () => {
    for (const command of COMMAND_DEFINITIONS) {
      for (const sub of command.options ?? []) {
        const options = 'options' in sub && Array.isArray(sub.options) ? (sub.options as Array<{ required?: boolean }>) : [];
        const firstOptional = options.findIndex((option) => option.required !== true);
        const lastRequired = options.map((option) => option.required === true).lastIndexOf(true);
        expect(firstOptional === -1 || lastRequired < firstOptional, `${command.name} ${sub.name}`).toBe(true);
      }
    }
  });

  it('stay well within 8,000 characters each', () => {
    for (const command of bulkCommandsSchema.parse(COMMAND_DEFINITIONS)) expect(commandSize(command)).toBeLessThan(4000);
  });
});
