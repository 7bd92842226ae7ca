import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AUTHORITY_KEY_FILE } from '../shared/authority-keys.js';
import { loadOrCreateSigner } from '../shared/signing.js';

/**
 * Before any test: the checkout's control-process key (data/authority.key), as the first
 * `npm run bot` or `npm start` makes it. Workers the tests start in the checkout trust
 * its public half by default, and the tests' own control plane signs with it.
 */
export default function setup(): void {
  loadOrCreateSigner(join(fileURLToPath(new URL('..', import.meta.url)), 'data', AUTHORITY_KEY_FILE), 'test setup');
}
