import { describe, expect, it } from 'vitest';
import { botEnvSchema, parseEnv } from '../../../shared/config.js';

/** The bot serves one guild: DISCORD_GUILD_ID is required wherever it serves Discord. */
const env = (extra: Record<string, string>) => ({ DISCORD_TOKEN: 'token', DISCORD_APP_ID: '123456789012345678', ...extra });
const REQUIRED = 'DISCORD_GUILD_ID is required: snapbot serves one guild and ignores every other (its id: 15 to 21 digits)';

describe('DISCORD_GUILD_ID', () => {
  it('is required, and the error names it and says why', () => {
    expect(() => parseEnv(botEnvSchema, env({}))).toThrow(expect.objectContaining({ code: 'VALIDATION', message: `Invalid configuration: ${REQUIRED}` }));
  });

  it('counts an empty value as unset', () => {
    expect(() => parseEnv(botEnvSchema, env({ DISCORD_GUILD_ID: '' }))).toThrow(`Invalid configuration: ${REQUIRED}`);
  });

  it('must be a Discord id', () => {
    expect(() => parseEnv(botEnvSchema, env({ DISCORD_GUILD_ID: 'my-server' }))).toThrow('Invalid configuration: DISCORD_GUILD_ID must be a Discord id: 15 to 21 digits');
  });

  it('is read as given', () => {
    expect(parseEnv(botEnvSchema, env({ DISCORD_GUILD_ID: '223456789012345678' })).DISCORD_GUILD_ID).toBe('223456789012345678');
  });
});
