import { join } from 'node:path';
import { AUTHORITY_KEY_FILE } from '../../shared/authority-keys.js';
import { loadOrCreateSigner, type Signer } from '../../shared/signing.js';
import { PROJECT_ROOT } from './processes.js';

let signer: Signer | undefined;

/**
 * The control process's key as a checkout has it: data/authority.key, made on first use.
 * Workers the tests start (cwd: the checkout) find its public half there by default, as
 * `npm start` and `npm run worker` on the same machine do.
 */
export function testAuthority(): Signer {
  signer ??= loadOrCreateSigner(join(PROJECT_ROOT, 'data', AUTHORITY_KEY_FILE), 'test');
  return signer;
}
