import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadOrCreateRedisPassword } from '../../../scripts/redis-server.js';
import { managedRedisPasswordFile, MANAGED_REDIS_URL, redisUrlOf } from '../../../shared/config.js';

/** Trust issue, finding 1: the managed Redis's password file, and how clients in the same folder find it. */
const dirs: string[] = [];
const scratch = () => {
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-password-'));
  dirs.push(dir);
  return dir;
};
const mode = (path: string) => statSync(path).mode & 0o777;

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('loadOrCreateRedisPassword', () => {
  it('makes 32 random bytes as base64url, 0600 in a 0700 directory, once', () => {
    const dataDir = join(scratch(), 'data');
    const file = managedRedisPasswordFile(dataDir);
    const first = loadOrCreateRedisPassword(file);
    expect(first).toMatchObject({ created: true, file, tightened: [] });
    expect(first.password).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.password, 'base64url')).toHaveLength(32);
    expect(readFileSync(file, 'utf8')).toBe(`${first.password}\n`);
    expect(mode(file)).toBe(0o600);
    expect(mode(dataDir)).toBe(0o700);
    const again = loadOrCreateRedisPassword(file);
    expect(again).toMatchObject({ created: false, password: first.password });
    expect(loadOrCreateRedisPassword(managedRedisPasswordFile(scratch())).password).not.toBe(first.password);
  });

  it('narrows a data directory and a file an older version left readable by others', () => {
    const dataDir = join(scratch(), 'data');
    mkdirSync(dataDir, { mode: 0o755 });
    chmodSync(dataDir, 0o755);
    const file = managedRedisPasswordFile(dataDir);
    writeFileSync(file, 'kept-password\n', { mode: 0o644 });
    chmodSync(file, 0o644);
    const loaded = loadOrCreateRedisPassword(file);
    expect(loaded).toMatchObject({ created: false, password: 'kept-password', tightened: [dataDir, file] });
    expect(mode(dataDir)).toBe(0o700);
    expect(mode(file)).toBe(0o600);
  });

  it('makes a new password when the file is empty', () => {
    const file = managedRedisPasswordFile(scratch());
    writeFileSync(file, '\n', { mode: 0o600 });
    const loaded = loadOrCreateRedisPassword(file);
    expect(loaded.created).toBe(true);
    expect(readFileSync(file, 'utf8').trim()).toBe(loaded.password);
  });
});

describe('redisUrlOf', () => {
  it('is REDIS_URL when set, whatever the data directory holds', () => {
    const dataDir = scratch();
    loadOrCreateRedisPassword(managedRedisPasswordFile(dataDir));
    expect(redisUrlOf({ REDIS_URL: 'redis://redis.example:6379', SNAPBOT_DATA_DIR: dataDir })).toBe('redis://redis.example:6379');
  });

  it('is the managed URL with the password from the data directory, or without one when there is no file', () => {
    const dataDir = scratch();
    expect(redisUrlOf({ SNAPBOT_DATA_DIR: dataDir })).toBe(MANAGED_REDIS_URL);
    const { password } = loadOrCreateRedisPassword(managedRedisPasswordFile(dataDir));
    expect(redisUrlOf({ SNAPBOT_DATA_DIR: dataDir })).toBe(`redis://:${password}@127.0.0.1:6380`);
  });
});
