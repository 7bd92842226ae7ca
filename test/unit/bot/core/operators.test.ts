import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOCAL_ADMINISTRATOR, OperatorDirectory } from '../../../../bot/core/operators.js';
import { DEFAULT_POLICY, policySchema } from '../../../../shared/policy.js';
import { Signer } from '../../../../shared/signing.js';
import { formatSshEd25519 } from '../../../../shared/ssh-keys.js';

const alice = Signer.generate();
const ci = Signer.generate();
const policy = policySchema.parse({
  rules: [],
  operators: [
    { name: 'alice', key: formatSshEd25519(alice.publicKey, 'alice@laptop'), roles: ['1180000000000000002'], discordUser: '1180000000000000042' },
    { name: 'ci', key: formatSshEd25519(ci.publicKey, ''), administrator: true },
  ],
});

describe('OperatorDirectory', () => {
  it("finds each policy operator by their key's id, with their roles, and links Discord when the policy says so", () => {
    const directory = new OperatorDirectory(policy, undefined);
    const found = directory.find(alice.keyId)!;
    expect(found.name).toBe('alice');
    expect(found.verifier.keyId).toBe(alice.keyId);
    expect(found.actor).toMatchObject({ id: 'snapctl:alice', userId: '1180000000000000042', roleIds: ['1180000000000000002'], isAdministrator: false });
    expect(found.requester).toEqual({ id: 'snapctl:alice', userId: '1180000000000000042', displayName: 'alice' });
    // Not linked: a requester id no Discord click can have.
    expect(directory.find(ci.keyId)!.actor).toMatchObject({ id: 'snapctl:ci', userId: 'operator:ci', roleIds: [], isAdministrator: true });
  });

  it('knows no one else', () => {
    expect(new OperatorDirectory(policy, undefined).find(Signer.generate().keyId)).toBeUndefined();
  });

  it('trusts the local key file as an administrator, read again when snapctl makes it after the start', () => {
    const dir = mkdtempSync(join(tmpdir(), 'snapbot-operators-'));
    const path = join(dir, 'operator.key.pub');
    const directory = new OperatorDirectory(DEFAULT_POLICY, path);
    const local = Signer.generate();
    expect(directory.find(local.keyId)).toBeUndefined();
    writeFileSync(path, local.publicKeyPem());
    expect(directory.find(local.keyId)).toMatchObject({ name: LOCAL_ADMINISTRATOR, actor: { isAdministrator: true, userId: `operator:${LOCAL_ADMINISTRATOR}` } });
    expect(directory.find(alice.keyId)).toBeUndefined();
    // A file that is not a key trusts nobody.
    writeFileSync(path, 'garbage');
    const fresh = new OperatorDirectory(DEFAULT_POLICY, path);
    expect(fresh.find(local.keyId)).toBeUndefined();
  });

  it('refuses a policy whose operator key is not an ed25519 line, or names an operator twice', () => {
    expect(() => policySchema.parse({ rules: [], operators: [{ name: 'x', key: 'ssh-rsa AAAAB3Nza' }] })).toThrow(/ssh-ed25519/);
    const line = formatSshEd25519(alice.publicKey, '');
    expect(() => policySchema.parse({ rules: [], operators: [{ name: 'x', key: line }, { name: 'x', key: line }] })).toThrow(/each name once/);
    expect(() => policySchema.parse({ rules: [], operators: [{ name: '-x', key: line }] })).toThrow(/operator name/);
    expect(() => new OperatorDirectory(policySchema.parse({ rules: [], operators: [{ name: 'x', key: 'ssh-ed25519 AAAA' }] }), undefined)).toThrow(/operators.x.key/);
  });
});
