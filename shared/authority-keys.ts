import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SnapbotError } from './errors.js';
import { loadOrCreateSigner, readPublicKey, readSigner, type SignatureVerifier, type Signer } from './signing.js';

/**
 * Where the keys live. The control process signs with `authority.key` (made on first
 * start, 0600); workers verify with its public half, `authority.key.pub`. On a single
 * host (`npm start`) both read the same data directory, so nothing needs configuring;
 * workers elsewhere are given the public key with SNAPBOT_AUTHORITY_KEY.
 */
export const AUTHORITY_KEY_FILE = 'authority.key';
/** snapctl's own key when it runs in the checkout (the local administrator's); its `.pub` is what the control process trusts. */
export const OPERATOR_KEY_FILE = 'operator.key';

export function dataDir(config: { SNAPBOT_DATA_DIR: string }): string {
  return resolve(config.SNAPBOT_DATA_DIR);
}

/** The control process's signing key: SNAPBOT_SIGNING_KEY, or made under the data directory on first start. */
export function loadAuthoritySigner(config: { SNAPBOT_DATA_DIR: string; SNAPBOT_SIGNING_KEY?: string | undefined }): Signer {
  if (config.SNAPBOT_SIGNING_KEY) return readSigner(config.SNAPBOT_SIGNING_KEY, 'SNAPBOT_SIGNING_KEY');
  return loadOrCreateSigner(join(dataDir(config), AUTHORITY_KEY_FILE), 'SNAPBOT_DATA_DIR');
}

/** The key a worker trusts: SNAPBOT_AUTHORITY_KEY, or the control process's public key in the same data directory. */
export function loadAuthorityVerifier(config: { SNAPBOT_DATA_DIR: string; SNAPBOT_AUTHORITY_KEY?: string | undefined }): SignatureVerifier {
  if (config.SNAPBOT_AUTHORITY_KEY) return readPublicKey(config.SNAPBOT_AUTHORITY_KEY, 'SNAPBOT_AUTHORITY_KEY');
  const local = join(dataDir(config), `${AUTHORITY_KEY_FILE}.pub`);
  if (existsSync(local)) return readPublicKey(local, 'SNAPBOT_DATA_DIR');
  throw new SnapbotError(
    'VALIDATION',
    `SNAPBOT_AUTHORITY_KEY is required: the control process's public key (PEM, or a path to it; it is ${AUTHORITY_KEY_FILE}.pub in the data directory of the machine that runs \`npm run bot\`). ` +
      `No ${local} here either. Without it this worker would run jobs from anyone who can write to Redis.`,
  );
}
