import { hostname, userInfo } from 'node:os';
import { formatSshEd25519 } from '../../shared/ssh-keys.js';
import { loadSnapctlSigner, snapctlKeyPath } from './operator-key.js';
import { clientConfig, type GlobalOptions } from './session.js';

/** `snapctl key`: this snapctl's public key, as the policy's operators list it. */

function userName(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `unknown@${hostname()}`; // no passwd entry in some containers
  }
}

export function runKey(global: GlobalOptions): void {
  const config = clientConfig();
  const signer = loadSnapctlSigner(config);
  const { path, local } = snapctlKeyPath(config);
  const line = formatSshEd25519(signer.publicKey, `snapctl@${userName()}`);
  if (global.json) process.stdout.write(`${JSON.stringify({ ok: true, key: line, keyId: signer.keyId, path, localAdministrator: local })}\n`);
  else
    process.stdout.write(
      `${line}\n# key ${signer.keyId}, ${path}${local ? ' (this checkout\'s local administrator key)' : ''}\n# add it to the policy: operators: [{ name: …, key: "<the line above>", roles: […] }]\n`,
    );
}
