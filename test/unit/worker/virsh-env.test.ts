import { afterEach, describe, expect, it } from 'vitest';
import { createVirshRunner, virshEnvironment } from '../../../worker/hypervisor/virsh-runner.js';

/** Issue 10: virsh gets a minimal environment, never the worker's secrets. */
const saved = { ...process.env };

afterEach(() => {
  for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
  Object.assign(process.env, saved);
});

describe('virshEnvironment', () => {
  it('keeps PATH, HOME and XDG_RUNTIME_DIR, sets the C locale, and drops everything else', () => {
    const env = virshEnvironment({
      PATH: '/usr/sbin:/usr/bin',
      HOME: '/root',
      XDG_RUNTIME_DIR: '/run/user/0',
      DISCORD_TOKEN: 'secret',
      REDIS_URL: 'redis://:pw@127.0.0.1:6380',
      LIBVIRT_DEFAULT_URI: 'qemu+ssh://elsewhere/system',
      LANG: 'de_DE.UTF-8',
      LC_MESSAGES: 'de_DE.UTF-8',
    });
    expect(env).toEqual({ PATH: '/usr/sbin:/usr/bin', HOME: '/root', XDG_RUNTIME_DIR: '/run/user/0', LC_ALL: 'C', LANG: 'C', LANGUAGE: '' });
  });

  it('gives virsh a standard PATH when the worker has none', () => {
    expect(virshEnvironment({}).PATH).toMatch(/\/usr\/bin/);
    expect(virshEnvironment({})).not.toHaveProperty('HOME');
  });
});

describe('createVirshRunner', () => {
  it('starts virsh with that environment only (extendEnv off): no DISCORD_TOKEN, no REDIS_URL', async () => {
    process.env.DISCORD_TOKEN = 'MTA4ODk2NjQ1NTk2ODA5MDM0Mw.secret';
    process.env.REDIS_URL = 'redis://:pw@127.0.0.1:6380';
    process.env.SNAPBOT_SOMETHING = 'x';
    // /usr/bin/env with no arguments prints the environment it was given.
    const result = await createVirshRunner('/usr/bin/env')({ args: [], timeoutMs: 5_000 });
    expect(result.exitCode).toBe(0);
    const names = result.stdout
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => line.slice(0, line.indexOf('=')))
      .sort();
    expect(names.every((name) => ['HOME', 'LANG', 'LANGUAGE', 'LC_ALL', 'PATH', 'XDG_RUNTIME_DIR'].includes(name)), names.join(' ')).toBe(true);
    expect(result.stdout).not.toContain('secret');
    expect(result.stdout).not.toContain('6380');
    expect(result.stdout).toContain('LC_ALL=C\n');
  });
});
