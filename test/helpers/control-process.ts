import { fileURLToPath } from 'node:url';
import { spawnNode, type SpawnedProcess } from './processes.js';

export const CONTROL_MAIN = fileURLToPath(new URL('../../dist/bot/main.js', import.meta.url));

/**
 * The control process (`npm run bot` without DISCORD_TOKEN) as a child process, in the
 * checkout: it signs with data/authority.key (which the tests' workers trust) and trusts
 * the checkout's snapctl key as the local administrator (no policy file, or a policy with
 * `localAdministrator: true`). snapctl's changes go through it.
 */
export async function startControlProcess(env: Record<string, string>): Promise<SpawnedProcess> {
  const control = spawnNode(CONTROL_MAIN, { LOG_LEVEL: 'info', ...env, DISCORD_TOKEN: '' });
  await control.waitFor('control process ready');
  return control;
}
