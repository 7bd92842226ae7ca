import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findFreePort, portInUse } from '../../scripts/redis-server.js';
import { parseJsonOutput, PROJECT_ROOT, runSnapctl } from '../helpers/processes.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, type TinyDomain } from './helpers/libvirt-host.js';

/**
 * The README's quick start: `npm start` with REDIS_URL unset runs a managed redis-server,
 * the control process (snapctl only, without DISCORD_TOKEN) and a worker for the local
 * libvirt; snapctl in the same folder finds them, and its change goes through the control
 * process (snapctl's key in the data directory is the local administrator there, the
 * worker trusts the control process's key made there); Ctrl-C (SIGINT to the terminal's
 * process group) stops everything cleanly.
 */
let domain: TinyDomain;
let dataDir: string;

beforeAll(async () => {
  await ensureLibvirt();
  domain = await createTinyDomain(`snapbot-e2e-start-${process.pid}`, { start: false });
  dataDir = mkdtempSync(join(tmpdir(), 'snapbot-start-'));
}, 600_000);

afterAll(async () => {
  if (domain) await destroyTinyDomain(domain.uuid);
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start', () => {
  it('runs a managed Redis, the control process and a worker, serves snapctl, and stops cleanly on Ctrl-C', async () => {
    expect(await portInUse(6380), 'port 6380 (managed Redis) must be free for this test').toBe(false);
    const { REDIS_URL: _ignored, SNAPBOT_POLICY: _noPolicy, ...inherited } = process.env;
    const metricsPort = await findFreePort();
    const env = { ...inherited, SNAPBOT_DATA_DIR: dataDir, HOST_ID: 'e2e-start', HEARTBEAT_INTERVAL_MS: '500', METRICS_PORT: String(metricsPort) };
    // detached: its own process group, like a shell job, so SIGINT can go to the whole group as Ctrl-C does.
    const child = spawn('npm', ['start'], { cwd: PROJECT_ROOT, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const groupGone = () => {
      try {
        process.kill(-child.pid!, 0);
        return false;
      } catch {
        return true;
      }
    };
    try {
      const deadline = Date.now() + 120_000;
      while (!output.includes('worker ready') || !output.includes('control process ready')) {
        if (Date.now() > deadline || child.exitCode !== null) throw new Error(`npm start did not become ready:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }

      // METRICS_PORT: the control process serves it, the worker the next port.
      for (const port of [metricsPort, metricsPort + 1]) expect((await fetch(`http://127.0.0.1:${port}/healthz`)).status).toBe(200);
      expect(await (await fetch(`http://127.0.0.1:${metricsPort + 1}/metrics`)).text()).toMatch(/snapbot_/);

      // No REDIS_URL: snapctl finds the managed Redis, and its password in the data directory.
      const snapctlEnv = { HOST_ID: 'unused', SNAPBOT_DATA_DIR: dataDir };
      const hosts = parseJsonOutput(await runSnapctl(['hosts', '--json'], snapctlEnv));
      expect(hosts).toMatchObject({ ok: true, hosts: [expect.objectContaining({ hostId: 'e2e-start', online: true })] });
      const created = parseJsonOutput(await runSnapctl(['create', '--vm', domain.name, '--name', 'from-quick-start', '--json'], snapctlEnv));
      expect(created).toMatchObject({ ok: true, snapshot: { name: 'from-quick-start' } });

      process.kill(-child.pid!, 'SIGINT');
      // npm itself dies of the SIGINT, as it does in a terminal; what matters is that
      // everything in the group stops, in order, within the grace period.
      const stopDeadline = Date.now() + 60_000;
      while (!groupGone()) {
        if (Date.now() > stopDeadline) throw new Error(`npm start did not stop:\n${output}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(output).toMatch(/worker stopped/);
      expect(output).toMatch(/stopping the control process/);
      expect(output).toMatch(/managed redis-server stopped/);
      expect(output.indexOf('worker stopped')).toBeLessThan(output.indexOf('managed redis-server stopped'));
      expect(output.indexOf('stopping the control process')).toBeLessThan(output.indexOf('managed redis-server stopped'));
      // The control process's key and snapctl's, made in the data directory, owner-only.
      expect(statSync(join(dataDir, 'authority.key')).mode & 0o777).toBe(0o600);
      expect(statSync(join(dataDir, 'operator.key')).mode & 0o777).toBe(0o600);
      expect(await portInUse(6380)).toBe(false);
      // The managed Redis kept its data as an append-only file under the data directory.
      expect(existsSync(join(dataDir, 'redis'))).toBe(true);
      expect(readdirSync(join(dataDir, 'redis'), { recursive: true }).some((file) => String(file).includes('.aof'))).toBe(true);
      // …and its password, owner-only.
      expect(statSync(join(dataDir, 'redis.password')).mode & 0o777).toBe(0o600);
    } finally {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // The group is already gone: the normal case.
      }
    }
  });
});
