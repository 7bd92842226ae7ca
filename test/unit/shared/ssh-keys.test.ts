import { generateKeyPairSync } from 'node:crypto';
import { beforeEach, describe, expect, it } from 'vitest';
import { keyIdOf, Signer } from '../../../shared/signing.js';
import { formatSshEd25519, parseSshEd25519 } from '../../../shared/ssh-keys.js';

// RFC 8032's test vector 1 public key in the line format ssh-keygen writes (RFC 8709 blob).
const RFC8032_LINE = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea test';
const RFC8032_BODY = RFC8032_LINE.split(' ')[1]!;

/** An ssh wire-format string: a 4-byte big-endian length, then the bytes. */
function sshString(value: Buffer | string): Buffer {
  const bytes = Buffer.from(value);
  const length = Buffer.alloc(4);
  length.writeUInt32BE(bytes.length);
  return Buffer.concat([length, bytes]);
}
const lineOf = (blob: Buffer) => `ssh-ed25519 ${blob.toString('base64')}`;
const refusal = (message: string) => expect.objectContaining({ code: 'VALIDATION', message });

let operator: Signer;
beforeEach(() => {
  operator = Signer.generate();
});

describe('parseSshEd25519', () => {
  it('reads a key line pasted with blanks around it, or with several blanks or a tab between its words', () => {
    const line = formatSshEd25519(operator.publicKey, 'alice@laptop');
    const [type, body, comment] = line.split(' ');
    for (const variant of [`  ${line}\n`, `${type}  ${body}  ${comment}`, `${type}\t${body}`]) {
      expect(keyIdOf(parseSshEd25519(variant, 'operators.alice.key'))).toBe(operator.keyId);
    }
  });

  it('refuses a key whose base64 has a stray character before or after it, naming where', () => {
    for (const body of [`!${RFC8032_BODY}`, `${RFC8032_BODY}!`, `${RFC8032_BODY}===`]) {
      expect(() => parseSshEd25519(`ssh-ed25519 ${body} test`, 'operators.bob.key')).toThrow(
        refusal('operators.bob.key: expected an OpenSSH Ed25519 public key line ("ssh-ed25519 AAAA… comment")'),
      );
    }
    expect(() => parseSshEd25519('ssh-ed25519', 'k')).toThrow(refusal('k: expected an OpenSSH Ed25519 public key line ("ssh-ed25519 AAAA… comment")'));
  });

  it('says a key blob cut short is truncated', () => {
    const name = sshString('ssh-ed25519');
    const key = sshString(Buffer.alloc(32, 7));
    // Cut inside the key's length field, just after it, and inside the key itself.
    for (const blob of [Buffer.concat([name, key.subarray(0, 3)]), name, Buffer.concat([name, key.subarray(0, 20)])]) {
      expect(() => parseSshEd25519(lineOf(blob), 'k')).toThrow(refusal('k: not a valid ssh-ed25519 key (truncated)'));
    }
    expect(() => parseSshEd25519(lineOf(Buffer.from([0, 0, 0])), 'k')).toThrow(refusal('k: not a valid ssh-ed25519 key (truncated)'));
  });

  it('refuses a blob that names another key type, holds a key of the wrong length, or has bytes after the key', () => {
    const wrong = (blob: Buffer) => () => parseSshEd25519(lineOf(blob), 'k');
    const notEd25519 = refusal('k: not a valid ssh-ed25519 key (not an ed25519 key blob)');
    expect(wrong(Buffer.concat([sshString('ssh-ed25518'), sshString(Buffer.alloc(32, 7))]))).toThrow(notEd25519);
    expect(wrong(Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(31, 7))]))).toThrow(notEd25519);
    expect(wrong(Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(0))]))).toThrow(notEd25519);
    expect(wrong(Buffer.concat([sshString('ssh-ed25519'), sshString(Buffer.alloc(32, 7)), Buffer.from([0])]))).toThrow(notEd25519);
  });
});

describe('formatSshEd25519', () => {
  it('prints the line ssh-keygen prints, with or without a comment', () => {
    const key = parseSshEd25519(RFC8032_LINE, 'k');
    expect(formatSshEd25519(key, 'test')).toBe(RFC8032_LINE);
    expect(formatSshEd25519(key, '')).toBe(`ssh-ed25519 ${RFC8032_BODY}`);
  });

  it('will not print an X25519, EC or RSA key as an ssh-ed25519 line', () => {
    const others = [
      generateKeyPairSync('x25519').publicKey,
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey,
      generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey,
    ];
    for (const key of others) {
      expect(() => formatSshEd25519(key, 'x')).toThrow(expect.objectContaining({ code: 'INTERNAL', message: 'not an Ed25519 key' }));
    }
  });
});
