import { accessSync, constants, existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { dataDir, OPERATOR_KEY_FILE } from '../../shared/authority-keys.js';
import { loadOrCreateSigner, readSigner, type Signer } from '../../shared/signing.js';

/**
 * snapctl's own key, which signs every change it asks for:
 * - SNAPCTL_KEY, a PEM file, when set;
 * - else, in a checkout whose data directory this user may write (where `npm start` or
 *   `npm run bot` keep their keys), `data/operator.key`: the control process there trusts
 *   it as the local administrator (without a policy file, or with `localAdministrator: true`);
 * - else `~/.config/snapbot/operator.key`, which an administrator adds to the policy's
 *   `operators` (`snapctl key` prints the line to add).
 * Made on first use, mode 0600.
 */
export function snapctlKeyPath(config: { SNAPCTL_KEY?: string | undefined; SNAPBOT_DATA_DIR: string }): { path: string; local: boolean } {
  if (config.SNAPCTL_KEY) return { path: config.SNAPCTL_KEY, local: false };
  const data = dataDir(config);
  if (existsSync(data)) {
    try {
      accessSync(data, constants.W_OK | constants.R_OK);
      return { path: join(data, OPERATOR_KEY_FILE), local: true };
    } catch {
      /* another user's checkout: use our own key */
    }
  }
  return { path: join(homedir(), '.config', 'snapbot', OPERATOR_KEY_FILE), local: false };
}

export function loadSnapctlSigner(config: { SNAPCTL_KEY?: string | undefined; SNAPBOT_DATA_DIR: string }): Signer {
  if (config.SNAPCTL_KEY) return readSigner(config.SNAPCTL_KEY, 'SNAPCTL_KEY');
  return loadOrCreateSigner(snapctlKeyPath(config).path, 'SNAPCTL_KEY');
}
