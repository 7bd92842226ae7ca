import { createSecretKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { loadAuthorityVerifier } from '../../../shared/authority-keys.js';
import { checkJobSignature, JOB_SIGNATURE_TTL_MS, signJob } from '../../../shared/job-signing.js';
import type { SnapshotJob } from '../../../shared/jobs.js';
import { canonicalJson, keyIdOf, loadOrCreateSigner, readPublicKey, readSigner, SignatureVerifier, Signer } from '../../../shared/signing.js';
import { formatSshEd25519, parseSshEd25519 } from '../../../shared/ssh-keys.js';

// Made in beforeEach, not at the top of the file: a key that cannot be made must fail a
// test, not the file's collection (Stryker counts only failed tests).
let authority: Signer;
beforeEach(() => {
  authority = Signer.generate();
});
const create: SnapshotJob = { kind: 'create', host: 'kvm-a', vm: 'web-01', uuid: '6f1d2c3b-0a9e-4d8c-b7a6-5e4f3d2c1b0a', requestedBy: 'discord:1', name: 'nightly', mode: 'disk-only' };
const revert: SnapshotJob = { kind: 'revert', host: 'kvm-a', vm: 'web-01', requestedBy: 'discord:1', name: 'base', expected: { createdAt: '2026-01-01T00:00:00.000Z' }, undoPoint: { mode: 'full', keep: 3 } };
const tempDir = () => mkdtempSync(join(tmpdir(), 'snapbot-keys-'));

describe('canonicalJson', () => {
  it('gives the same text whatever order the keys were written in, at every level, leaving undefined out', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: 'x' }, u: undefined })).toBe('{"a":{"c":"x","d":[1,{"y":2,"z":1}]},"b":1}');
    expect(canonicalJson({ a: 1, b: 2 })).toBe(canonicalJson({ b: 2, a: 1 }));
    expect(canonicalJson([undefined, null, 'é'])).toBe('[null,null,"é"]');
  });

  it('refuses numbers JSON cannot say, as an internal error', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson(Number.POSITIVE_INFINITY)).toThrow(expect.objectContaining({ code: 'INTERNAL', message: 'cannot sign a non-finite number' }));
  });

  it('writes a value that is undefined as null, as JSON does in an array', () => {
    expect(canonicalJson(undefined)).toBe('null');
    expect(canonicalJson([undefined])).toBe('[null]');
  });
});

describe('Signer and SignatureVerifier', () => {
  it('verifies its own signature of exactly that value for that purpose, and nothing else', () => {
    const signature = authority.sign('test/v1', { a: 1 });
    expect(signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(authority.verify('test/v1', { a: 1 }, signature)).toBe(true);
    expect(authority.verify('test/v1', { a: 2 }, signature)).toBe(false);
    expect(authority.verify('other/v1', { a: 1 }, signature)).toBe(false);
    expect(Signer.generate().verify('test/v1', { a: 1 }, signature)).toBe(false);
  });

  it('says false, never throws, for signatures that are not even well formed', () => {
    for (const bad of [undefined, null, 42, '', 'x'.repeat(85), `${'A'.repeat(85)}=`, `${'A'.repeat(86)}`]) {
      expect(authority.verify('test/v1', { a: 1 }, bad)).toBe(false);
    }
  });

  it('refuses a valid signature with a stray character put before or after it', () => {
    // base64url decoding skips characters it does not know: '!' + signature decodes to the signature.
    const signature = authority.sign('test/v1', { a: 1 });
    expect(authority.verify('test/v1', { a: 1 }, `!${signature}`)).toBe(false);
    expect(authority.verify('test/v1', { a: 1 }, `${signature}!`)).toBe(false);
    expect(authority.verify('test/v1', { a: 1 }, `${signature}\n`)).toBe(false);
  });

  it('says false, not an error, when asked about a value it could never have signed', () => {
    const signature = authority.sign('test/v1', { a: 1 });
    expect(authority.verify('test/v1', { a: Number.NaN }, signature)).toBe(false);
  });

  it('refuses keys that are not Ed25519', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => new SignatureVerifier(publicKey)).toThrow(/expected an Ed25519 public key, got ec/);
    expect(() => new SignatureVerifier(publicKey)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    // A secret (symmetric) key has no asymmetric type at all.
    expect(() => new SignatureVerifier(createSecretKey(Buffer.alloc(32, 1)))).toThrow(
      expect.objectContaining({ code: 'VALIDATION', message: 'expected an Ed25519 public key, got unknown' }),
    );
  });

  it('keeps the key id of a given key from one version to the next (policies and logs name keys by it)', () => {
    // RFC 8032's test vector 1 public key; the id is the first 16 hex digits of the SHA-256 of its DER SPKI
    // (302a300506032b6570032100 followed by the 32 key bytes), computed with sha256sum.
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from('d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a', 'hex')]);
    const pem = `-----BEGIN PUBLIC KEY-----\n${spki.toString('base64')}\n-----END PUBLIC KEY-----\n`;
    expect(readPublicKey(pem, 'TEST').keyId).toBe('06e3fd8fda29bb60');
  });

  it('names a key by 16 hex digits of its hash, the same for the signer and its public half', () => {
    expect(authority.keyId).toMatch(/^[0-9a-f]{16}$/);
    expect(keyIdOf(authority.publicKey)).toBe(authority.keyId);
    expect(readPublicKey(authority.publicKeyPem(), 'TEST').keyId).toBe(authority.keyId);
    expect(Signer.generate().keyId).not.toBe(authority.keyId);
  });
});

describe('key files', () => {
  it('makes a key on first use, 0600 with its public half beside it, and reads the same key after', () => {
    const dir = tempDir();
    const path = join(dir, 'sub', 'authority.key');
    const made = loadOrCreateSigner(path, 'TEST');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'sub')).mode & 0o777).toBe(0o700);
    expect(readPublicKey(`${path}.pub`, 'TEST').keyId).toBe(made.keyId);
    expect(loadOrCreateSigner(path, 'TEST').keyId).toBe(made.keyId);
    expect(readSigner(path, 'TEST').keyId).toBe(made.keyId);
  });

  it('names the variable when a key file is missing or not a key', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'junk'), 'not a key');
    expect(() => readSigner(join(dir, 'missing'), 'SNAPBOT_SIGNING_KEY')).toThrow(/^SNAPBOT_SIGNING_KEY: cannot read the private key/);
    expect(() => readSigner(join(dir, 'junk'), 'SNAPBOT_SIGNING_KEY')).toThrow(/^SNAPBOT_SIGNING_KEY: .* is not an Ed25519 private key/);
    expect(() => readPublicKey(join(dir, 'missing'), 'SNAPBOT_AUTHORITY_KEY')).toThrow(/^SNAPBOT_AUTHORITY_KEY: cannot read the public key/);
    expect(() => readPublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', 'SNAPBOT_AUTHORITY_KEY')).toThrow(/^SNAPBOT_AUTHORITY_KEY: not an Ed25519 public key/);
    // All of them are configuration errors (VALIDATION), not internal ones.
    for (const attempt of [
      () => readSigner(join(dir, 'missing'), 'V'),
      () => readSigner(join(dir, 'junk'), 'V'),
      () => readPublicKey(join(dir, 'missing'), 'V'),
      () => readPublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----', 'V'),
    ]) {
      expect(attempt).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    }
  });

  it('names the variable when a new key cannot be written', () => {
    // A file name longer than the file system allows: the write fails (ENAMETOOLONG), not because the key exists.
    const path = join(tempDir(), 'k'.repeat(300));
    expect(() => loadOrCreateSigner(path, 'SNAPBOT_SIGNING_KEY')).toThrow(
      expect.objectContaining({ code: 'VALIDATION', message: expect.stringMatching(/^SNAPBOT_SIGNING_KEY: cannot write a new key to .*k{300}: ENAMETOOLONG/) }),
    );
  });

  it("a worker finds the control process's public key in the same data directory, or says which variable to set", () => {
    const dir = tempDir();
    expect(() => loadAuthorityVerifier({ SNAPBOT_DATA_DIR: dir })).toThrow(/SNAPBOT_AUTHORITY_KEY is required/);
    const made = loadOrCreateSigner(join(dir, 'authority.key'), 'TEST');
    expect(loadAuthorityVerifier({ SNAPBOT_DATA_DIR: dir }).keyId).toBe(made.keyId);
    // An explicit key wins over the data directory's.
    expect(loadAuthorityVerifier({ SNAPBOT_DATA_DIR: dir, SNAPBOT_AUTHORITY_KEY: authority.publicKeyPem() }).keyId).toBe(authority.keyId);
  });
});

describe('signJob and checkJobSignature', () => {
  it('accepts the job as signed, for its own job id', () => {
    const signed = signJob(authority, 'job-1', create);
    expect(signed.auth).toMatchObject({ keyId: authority.keyId });
    expect(signed.auth!.expiresAt).toBeGreaterThan(Date.now() + JOB_SIGNATURE_TTL_MS - 60_000);
    expect(checkJobSignature(authority, 'job-1', signed)).toMatchObject({ ok: true, approvalId: undefined });
  });

  it('refuses any field changed, another job id, another key, and no signature', () => {
    const signed = signJob(authority, 'job-1', create, { approvalId: 'a1' });
    const changes: Array<Partial<SnapshotJob> | Record<string, unknown>> = [
      { vm: 'web-02' },
      { host: 'kvm-b' },
      { uuid: '00000000-0000-4000-8000-000000000000' },
      { name: 'other' },
      { mode: 'full' },
      { requestedBy: 'discord:2' },
      { description: 'added' },
      { auth: { ...signed.auth!, expiresAt: signed.auth!.expiresAt + 1 } },
      { auth: { ...signed.auth!, approvalId: 'a2' } },
      { auth: { ...signed.auth!, approvalId: undefined } },
    ];
    for (const change of changes) expect(checkJobSignature(authority, 'job-1', { ...signed, ...change } as SnapshotJob)).toMatchObject({ ok: false });
    expect(checkJobSignature(authority, 'job-2', signed)).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match/) });
    expect(checkJobSignature(Signer.generate(), 'job-1', signed)).toMatchObject({ ok: false, reason: expect.stringMatching(/not by this worker's authority/) });
    expect(checkJobSignature(authority, 'job-1', create)).toMatchObject({ ok: false, reason: expect.stringMatching(/carries no signature/) });
    // The key id is not trusted on its own: a stranger's signature under our key id fails.
    const forged = signJob(Signer.generate(), 'job-1', create);
    expect(checkJobSignature(authority, 'job-1', { ...forged, auth: { ...forged.auth!, keyId: authority.keyId } })).toMatchObject({ ok: false, reason: expect.stringMatching(/does not match/) });
  });

  it('signs and checks only jobs that change a VM; reads pass as they are', () => {
    const list: SnapshotJob = { kind: 'list', host: 'kvm-a', vm: 'web-01', requestedBy: 'x' };
    expect(signJob(authority, 'job-3', list)).toEqual(list);
    expect(checkJobSignature(authority, 'job-3', list)).toMatchObject({ ok: true });
  });

  it("will not sign a revert that does not name the snapshot's creation time", () => {
    expect(() => signJob(authority, 'job-4', { ...revert, expected: undefined } as SnapshotJob)).toThrow(/must carry the snapshot's creation time/);
    expect(checkJobSignature(authority, 'job-4', signJob(authority, 'job-4', revert))).toMatchObject({ ok: true });
  });

  it('keeps the expiry and approval it was given', () => {
    const signed = signJob(authority, 'job-5', revert, { expiresAt: 1234, approvalId: 'feed' });
    expect(checkJobSignature(authority, 'job-5', signed)).toEqual({ ok: true, expiresAt: 1234, approvalId: 'feed' });
  });
});

describe('OpenSSH ed25519 key lines', () => {
  it('round-trips: the line snapctl key prints reads back as the same key', () => {
    const line = formatSshEd25519(authority.publicKey, 'alice@laptop');
    expect(line).toMatch(/^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]+=* alice@laptop$/);
    expect(keyIdOf(parseSshEd25519(line, 'operators.alice.key'))).toBe(authority.keyId);
    expect(keyIdOf(parseSshEd25519(line.replace(' alice@laptop', ''), 'k'))).toBe(authority.keyId);
  });

  it('reads a key as ssh-keygen writes it', () => {
    // RFC 8032's test vector 1 public key (d75a9801…511a) in the line format ssh-keygen writes (RFC 8709 blob).
    const line = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINdamAGCsQq31Uv+08lkBzoO4XLz2qYjJa8CGmj3B1Ea test';
    const key = parseSshEd25519(line, 'k');
    expect(key.export({ format: 'jwk' }).x).toBe('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo');
  });

  it('refuses other key types, broken encodings and truncated blobs, naming where', () => {
    const good = formatSshEd25519(authority.publicKey, '');
    const blob = Buffer.from(good.split(' ')[1]!, 'base64');
    expect(() => parseSshEd25519('ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ', 'operators.bob.key')).toThrow(/^operators.bob.key: expected an OpenSSH Ed25519 public key line/);
    expect(() => parseSshEd25519('ssh-ed25519 !!!', 'k')).toThrow(/expected an OpenSSH Ed25519/);
    expect(() => parseSshEd25519(`ssh-ed25519 ${blob.subarray(0, blob.length - 1).toString('base64')}`, 'k')).toThrow(/not a valid ssh-ed25519 key/);
    expect(() => parseSshEd25519(`ssh-ed25519 ${Buffer.concat([blob, Buffer.from([0])]).toString('base64')}`, 'k')).toThrow(/not a valid ssh-ed25519 key/);
    const renamed = Buffer.from(blob);
    renamed.write('ssh-ed25518', 4);
    expect(() => parseSshEd25519(`ssh-ed25519 ${renamed.toString('base64')}`, 'k')).toThrow(/not a valid ssh-ed25519 key/);
  });
});

describe('the key file on disk is a PEM', () => {
  it('holds a PKCS#8 private key', () => {
    const path = join(tempDir(), 'k');
    loadOrCreateSigner(path, 'T');
    expect(readFileSync(path, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });
});
