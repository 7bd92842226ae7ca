import { createPublicKey, type KeyObject } from 'node:crypto';
import { SnapbotError } from './errors.js';

/**
 * Ed25519 public keys in OpenSSH's one-line form (`ssh-ed25519 AAAA… comment`), the form
 * operators already paste into authorized_keys and git's allowed_signers: the policy
 * lists operators' keys this way, and `snapctl key` prints its own like this.
 */
const KEY_TYPE = 'ssh-ed25519';

function sshString(buffer: Buffer, offset: number): { value: Buffer; next: number } {
  if (offset + 4 > buffer.length) throw new Error('truncated');
  const length = buffer.readUInt32BE(offset);
  const end = offset + 4 + length;
  if (end > buffer.length) throw new Error('truncated');
  return { value: buffer.subarray(offset + 4, end), next: end };
}

/** The key of an `ssh-ed25519 <base64> [comment]` line; VALIDATION naming `where` otherwise. */
export function parseSshEd25519(line: string, where: string): KeyObject {
  const [type, body] = line.trim().split(/\s+/);
  if (type !== KEY_TYPE || !body || !/^[A-Za-z0-9+/]+={0,2}$/.test(body)) {
    throw new SnapbotError('VALIDATION', `${where}: expected an OpenSSH Ed25519 public key line ("ssh-ed25519 AAAA… comment")`);
  }
  try {
    const blob = Buffer.from(body, 'base64');
    const name = sshString(blob, 0);
    const key = sshString(blob, name.next);
    if (name.value.toString() !== KEY_TYPE || key.value.length !== 32 || key.next !== blob.length) throw new Error('not an ed25519 key blob');
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: key.value.toString('base64url') }, format: 'jwk' });
  } catch (error) {
    throw new SnapbotError('VALIDATION', `${where}: not a valid ssh-ed25519 key (${(error as Error).message})`);
  }
}

/** `ssh-ed25519 AAAA… comment` for an Ed25519 public key. */
export function formatSshEd25519(publicKey: KeyObject, comment: string): string {
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || typeof jwk.x !== 'string') throw new SnapbotError('INTERNAL', 'not an Ed25519 key');
  const field = (value: Buffer) => {
    const length = Buffer.alloc(4);
    length.writeUInt32BE(value.length);
    return [length, value];
  };
  const blob = Buffer.concat([...field(Buffer.from(KEY_TYPE)), ...field(Buffer.from(jwk.x, 'base64url'))]);
  return `${KEY_TYPE} ${blob.toString('base64')}${comment ? ` ${comment}` : ''}`;
}
