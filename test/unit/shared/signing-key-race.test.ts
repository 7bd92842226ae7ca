import * as fs from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { loadOrCreateSigner, readSigner, Signer } from '../../../shared/signing.js';

// existsSync passes through to the real one unless a test says otherwise: that is how a test
// plays the other process, which writes its key between our check and our write.
vi.mock('node:fs', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs')>();
  return { ...actual, existsSync: vi.fn(actual.existsSync) };
});

describe('two processes making the key at once', () => {
  it('the one that finds the key written after its check uses that key instead of overwriting it', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'snapbot-key-race-')), 'authority.key');
    const winner = Signer.generate();
    fs.writeFileSync(path, winner.privateKeyPem(), { mode: 0o600 });
    // Our process checked before the winner wrote.
    vi.mocked(fs.existsSync).mockReturnValueOnce(false);
    const loser = loadOrCreateSigner(path, 'SNAPBOT_SIGNING_KEY');
    expect(loser.keyId).toBe(winner.keyId);
    expect(readSigner(path, 'SNAPBOT_SIGNING_KEY').keyId).toBe(winner.keyId);
    // The winner's public half is not replaced by a different key's.
    expect(fs.existsSync(`${path}.pub`)).toBe(false);
  });
});
