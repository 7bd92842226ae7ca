import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { WORKER_ENVIRONMENT, WORKER_NODE_FLAGS } from '../../scripts/worker-node-flags.js';
import { botEnvSchema, controlEnvSchema, parseEnv, workerEnvSchema } from '../../shared/config.js';

/**
 * The deployment files as an operator meets them: the systemd units through
 * `systemd-analyze` (security rating and verify, offline), the compose file through
 * `docker-compose config`, the Dockerfile by what it must hold (Debian 12 packages no
 * hadolint, so nothing lints it here). The tools are Debian packages that .ci/run
 * installs; a missing one fails with the apt-get line to run, it never skips.
 */
const ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const WORKER_UNIT = join(ROOT, 'deploy/snapbot-worker.service');
const BOT_UNIT = join(ROOT, 'deploy/snapbot-bot.service');
const MAX_EXPOSURE = 3.0;

interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: string[], options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<ToolResult> {
  return new Promise((resolvePromise, reject) => {
    execFile(command, args, { cwd: options.cwd ?? ROOT, env: options.env ?? process.env, timeout: 60_000, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') {
        if (error.code === 'ENOENT') reject(new Error(`${command} is not installed: run \`apt-get install -y ${PACKAGE_OF[command] ?? command}\` (.ci/run does)`));
        else reject(error);
        return;
      }
      resolvePromise({ code: error ? (error.code as number) : 0, stdout, stderr });
    });
  });
}

const PACKAGE_OF: Record<string, string> = { 'systemd-analyze': 'systemd', 'docker-compose': 'docker-compose' };

/** A unit file's `Key=value` lines by section; repeated keys keep every value. */
function readUnit(path: string): Map<string, string[]> {
  const settings = new Map<string, string[]>();
  let section = '';
  for (const raw of readFileSync(path, 'utf8').split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    const at = line.indexOf('=');
    const key = `${section}.${line.slice(0, at)}`;
    settings.set(key, [...(settings.get(key) ?? []), line.slice(at + 1)]);
  }
  return settings;
}

function setting(unit: Map<string, string[]>, key: string): string | undefined {
  return unit.get(`Service.${key}`)?.at(-1);
}

/** Seconds in a time span as systemd ("420", "90s", "7min") or compose ("60s", "1m30s") write it. */
function seconds(span: string): number {
  const text = span.trim();
  if (/^\d+$/.test(text)) return Number(text);
  const parts = [...text.matchAll(/(\d+)\s*(h|min|m|sec|s)/g)];
  if (parts.length === 0 || parts.map((part) => part[0]).join('') !== text.replace(/\s+/g, '')) throw new Error(`unexpected time span ${span}`);
  const unit: Record<string, number> = { h: 3600, min: 60, m: 60, sec: 1, s: 1 };
  return parts.reduce((total, part) => total + Number(part[1]) * unit[part[2]!]!, 0);
}

async function exposureOf(unitPath: string): Promise<{ level: number; report: string }> {
  const result = await run('systemd-analyze', ['security', '--offline=yes', '--no-pager', unitPath]);
  const report = result.stdout + result.stderr;
  const match = /Overall exposure level for \S+: (\d+(?:\.\d+)?)/.exec(report);
  if (!match) throw new Error(`no overall exposure level in systemd-analyze's answer (exit ${result.code}):\n${report}`);
  return { level: Number(match[1]), report };
}

/**
 * `systemd-analyze verify` on a copy whose ExecStart names this machine's node (verify
 * checks that the command exists; production hosts have /usr/bin/node).
 */
async function verifyUnit(unitPath: string): Promise<ToolResult> {
  const dir = mkdtempSync(join(tmpdir(), 'snapbot-unit-'));
  try {
    const copy = join(dir, unitPath.split('/').at(-1)!);
    writeFileSync(copy, readFileSync(unitPath, 'utf8').replaceAll('/usr/bin/node ', `${process.execPath} `));
    return await run('systemd-analyze', ['verify', '--man=no', copy]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('deploy/snapbot-worker.service', () => {
  const unit = readUnit(WORKER_UNIT);

  it(`rates ${MAX_EXPOSURE.toFixed(1)} or lower in systemd-analyze security`, async () => {
    const { level, report } = await exposureOf(WORKER_UNIT);
    expect(level, report).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('passes systemd-analyze verify without a warning', async () => {
    const result = await verifyUnit(WORKER_UNIT);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('runs as the snapbot user in the libvirt group, with its settings from a file', () => {
    expect(setting(unit, 'User')).toBe('snapbot');
    expect(setting(unit, 'SupplementaryGroups')).toBe('libvirt');
    expect(setting(unit, 'EnvironmentFile')).toBe('/etc/snapbot/worker.env');
    // The worker's V8 flags, as npm start and `npm run worker` give them (scripts/worker-node-flags.ts).
    expect(setting(unit, 'ExecStart')).toBe(`/usr/bin/node ${WORKER_NODE_FLAGS.join(' ')} /opt/snapbot/dist/worker/main.js`);
    const scripts = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;
    const environment = Object.entries(WORKER_ENVIRONMENT).map(([name, value]) => `${name}=${value}`);
    expect(scripts.worker).toBe(`${environment.join(' ')} node ${WORKER_NODE_FLAGS.join(' ')} dist/worker/main.js`);
    expect(unit.get('Service.Environment')).toEqual(environment);
  });

  it('signals node alone on stop and waits longer than the longest virsh call plus the shutdown grace', () => {
    const defaults = workerEnvSchema.parse({});
    expect(setting(unit, 'KillMode')).toBe('mixed');
    expect(seconds(setting(unit, 'TimeoutStopSec')!) * 1000).toBeGreaterThan(defaults.VIRSH_TIMEOUT_MS + defaults.SHUTDOWN_GRACE_MS);
  });

  it('reaches libvirt and Redis but no other address family, and leaves out what breaks node', () => {
    expect(setting(unit, 'RestrictAddressFamilies')).toBe('AF_UNIX AF_INET AF_INET6');
    expect(setting(unit, 'CapabilityBoundingSet')).toBe('');
    expect(setting(unit, 'ProtectSystem')).toBe('strict');
    expect(setting(unit, 'NoNewPrivileges')).toBe('yes');
    expect(unit.get('Service.SystemCallFilter')).toContain('@system-service');
    // V8's JIT writes code and then runs it.
    expect(setting(unit, 'MemoryDenyWriteExecute')).toBeUndefined();
  });
});

describe('deploy/snapbot-bot.service', () => {
  const unit = readUnit(BOT_UNIT);

  it(`rates ${MAX_EXPOSURE.toFixed(1)} or lower in systemd-analyze security`, async () => {
    const { level, report } = await exposureOf(BOT_UNIT);
    expect(level, report).toBeLessThanOrEqual(MAX_EXPOSURE);
  });

  it('passes systemd-analyze verify without a warning', async () => {
    const result = await verifyUnit(BOT_UNIT);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.code).toBe(0);
  });

  it('runs as the snapbot user and writes only its data directory, where its key is made', () => {
    expect(setting(unit, 'User')).toBe('snapbot');
    expect(setting(unit, 'ExecStart')).toBe('/usr/bin/node /opt/snapbot/dist/bot/main.js');
    expect(setting(unit, 'EnvironmentFile')).toBe('/etc/snapbot/bot.env');
    expect(setting(unit, 'StateDirectory')).toBe('snapbot');
    expect(setting(unit, 'Environment')).toBe('SNAPBOT_DATA_DIR=/var/lib/snapbot');
    expect(setting(unit, 'ReadWritePaths')).toBe('/var/lib/snapbot');
    expect(setting(unit, 'ProtectSystem')).toBe('strict');
    expect(setting(unit, 'MemoryDenyWriteExecute')).toBeUndefined();
  });

  it("waits longer on stop than the control process's own 40 s bound", () => {
    expect(setting(unit, 'KillMode')).toBe('mixed');
    expect(seconds(setting(unit, 'TimeoutStopSec')!)).toBeGreaterThan(40);
  });
});

const REQUIRED = {
  REDIS_PASSWORD: 'a-password_0',
  DISCORD_TOKEN: 'token.of.the.bot',
  DISCORD_APP_ID: '111111111111111111',
  DISCORD_GUILD_ID: '222222222222222222',
} as const;

interface ComposeService {
  build?: unknown;
  image?: string;
  command?: unknown;
  entrypoint?: unknown;
  user?: string;
  volumes?: unknown[];
  ports?: unknown[];
  environment?: Record<string, string | null> | string[];
  stop_grace_period?: string;
}

describe('docker-compose.yml', () => {
  let dir: string;
  let emptyEnvFile: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'snapbot-compose-'));
    emptyEnvFile = join(dir, 'empty.env');
    writeFileSync(emptyEnvFile, '');
  });

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** `docker-compose config` with only these variables (no shell's, no checkout's .env). */
  function composeConfig(variables: Record<string, string>, envFile = emptyEnvFile): Promise<ToolResult> {
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir, ...variables };
    return run('docker-compose', ['--env-file', envFile, '-f', join(ROOT, 'docker-compose.yml'), 'config'], { env });
  }

  async function servicesWith(variables: Record<string, string>, envFile?: string): Promise<Record<string, ComposeService>> {
    const result = await composeConfig(variables, envFile);
    expect(result.code, result.stderr).toBe(0);
    return (parseYaml(result.stdout) as { services: Record<string, ComposeService> }).services;
  }

  function environmentOf(service: ComposeService): Record<string, string | null> {
    const env = service.environment ?? {};
    if (!Array.isArray(env)) return env;
    return Object.fromEntries(env.map((entry) => (entry.includes('=') ? [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)] : [entry, null])));
  }

  /** Published ports as "address:published:target" (compose v1 prints strings, v2 objects). */
  function portsOf(service: ComposeService): string[] {
    return (service.ports ?? []).map((port) => {
      if (typeof port === 'string') return port.replace(/\/tcp$/, '');
      const { host_ip, published, target } = port as { host_ip?: string; published: string | number; target: number };
      return `${host_ip ?? '0.0.0.0'}:${published}:${target}`;
    });
  }

  it('starts with only the required variables set, and the bot accepts the environment it gets', async () => {
    const services = await servicesWith(REQUIRED);
    const env = environmentOf(services.bot!);
    // Unset optional ones stay unset (null: taken from the environment, which has none).
    expect(env.DISCORD_CHANNEL_ID ?? undefined).toBeUndefined();
    expect(env.SNAPBOT_POLICY ?? undefined).toBeUndefined();
    expect(Object.values(env)).not.toContain('');
    const given = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
    expect(() => parseEnv(controlEnvSchema, given)).not.toThrow();
    const bot = parseEnv(botEnvSchema, given);
    expect(bot.DISCORD_GUILD_ID).toBe(REQUIRED.DISCORD_GUILD_ID);
    expect(bot.REDIS_URL).toBe(`redis://:${REQUIRED.REDIS_PASSWORD}@redis:6379`);
  });

  it('passes optional variables given in .env on to the bot', async () => {
    const envFile = join(dir, 'optional.env');
    writeFileSync(envFile, 'DISCORD_CHANNEL_ID=333333333333333333\nLOG_LEVEL=debug\n');
    const env = environmentOf((await servicesWith(REQUIRED, envFile)).bot!);
    expect(env.DISCORD_CHANNEL_ID).toBe('333333333333333333');
    expect(env.LOG_LEVEL).toBe('debug');
  });

  for (const name of Object.keys(REQUIRED)) {
    it(`refuses to start without ${name}, naming it`, async () => {
      const { [name as keyof typeof REQUIRED]: _left, ...others } = REQUIRED;
      const missing = await composeConfig(others);
      expect(missing.code).not.toBe(0);
      expect(missing.stderr).toContain(`set ${name}`);
      const empty = await composeConfig({ ...others, [name]: '' });
      expect(empty.code).not.toBe(0);
      expect(empty.stderr).toContain(`set ${name}`);
    });
  }

  it('builds the bot from the Dockerfile and runs it as the image says: no npm ci, no checkout mounted', async () => {
    const bot = (await servicesWith(REQUIRED)).bot!;
    expect(bot.build).toBeDefined();
    expect(bot.command).toBeUndefined();
    expect(bot.entrypoint).toBeUndefined();
    expect(bot.user).toBeUndefined();
    for (const volume of bot.volumes ?? []) {
      const source = typeof volume === 'string' ? volume.split(':')[0]! : String((volume as { source?: string }).source);
      expect(source, 'only named volumes').toMatch(/^[a-z][\w-]*$/);
    }
    // Longer than the control process's own 40 s bound on stopping.
    expect(seconds(String(bot.stop_grace_period))).toBeGreaterThan(40);
  });

  it('publishes Redis on loopback by default and on the address REDIS_BIND_ADDRESS names', async () => {
    expect(portsOf((await servicesWith(REQUIRED)).redis!)).toEqual(['127.0.0.1:6379:6379']);
    const services = await servicesWith({ ...REQUIRED, REDIS_BIND_ADDRESS: '10.20.30.40', REDIS_PORT: '6390' });
    expect(portsOf(services.redis!)).toEqual(['10.20.30.40:6390:6379']);
  });

  it('runs Redis with AOF always, noeviction and the password from stdin, not argv', async () => {
    const redis = (await servicesWith(REQUIRED)).redis!;
    const command = (redis.command as string[]).join(' ');
    expect(command).toMatch(/--appendonly yes --appendfsync always --maxmemory-policy noeviction/);
    expect(command).toContain('redis-server - ');
    expect(command).toContain('requirepass "$$REDIS_PASSWORD"');
    expect(command).not.toContain(REQUIRED.REDIS_PASSWORD);
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  // Continuation lines joined, comments dropped: one instruction a line.
  const instructions = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const runtime = instructions.slice(instructions.findLastIndex((line) => line.startsWith('FROM ')));
  const dockerignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));

  it('builds in one stage and runs the current Node LTS slim image in another', () => {
    const image = /^ARG NODE_IMAGE=node:(\d+)-(\w+)-slim$/m.exec(dockerfile);
    expect(image, 'ARG NODE_IMAGE=node:<major>-<debian>-slim').not.toBeNull();
    const major = Number(image![1]);
    expect(major % 2, 'an even, LTS line').toBe(0);
    expect(major).toBeGreaterThanOrEqual(24);
    expect(instructions.filter((line) => line.startsWith('FROM ${NODE_IMAGE}'))).toHaveLength(2);
    expect(instructions).toContain('RUN npm run build');
  });

  it('installs production dependencies only in the runtime stage, without running the build script', () => {
    const installs = runtime.filter((line) => line.includes('npm ci'));
    expect(installs).toHaveLength(1);
    expect(installs[0]).toContain('--omit=dev');
    expect(installs[0]).toContain('--ignore-scripts');
  });

  it('runs node as the node user under tini, the bot by default, with a health check', () => {
    const user = runtime.findIndex((line) => line === 'USER node');
    expect(user).toBeGreaterThan(0);
    expect(runtime.findIndex((line) => line.startsWith('CMD '))).toBeGreaterThan(user);
    expect(runtime).toContain('ENTRYPOINT ["/usr/bin/tini", "--"]');
    expect(runtime).toContain('CMD ["node", "dist/bot/main.js"]');
    expect(runtime.some((line) => /^HEALTHCHECK .*CMD \["node", "deploy\/docker\/healthcheck\.mjs"\]$/.test(line))).toBe(true);
  });

  it('copies only files the build context holds', () => {
    for (const line of instructions.filter((entry) => entry.startsWith('COPY ') && !entry.includes('--from='))) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) {
        expect(existsSync(join(ROOT, source)), `${source} exists`).toBe(true);
        const excluded = dockerignore.some((pattern) => !pattern.startsWith('!') && (source === pattern || source.startsWith(`${pattern}/`)));
        expect(excluded, `${source} is not in .dockerignore`).toBe(false);
      }
    }
  });

  it('keeps secrets and local state out of the build context', () => {
    for (const entry of ['.env', 'data', 'node_modules', 'dist', '.git']) expect(dockerignore).toContain(entry);
  });

  it('gives the runtime stage every module its entry points import: code it copies, production dependencies', () => {
    // npm test builds dist/ first; the runtime stage copies dist/{bot,worker,shared}.
    const copied = ['dist/bot', 'dist/worker', 'dist/shared'];
    for (const dir of copied) expect(runtime).toContain(`COPY --from=build /src/${dir} ./${dir}`);
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const seen = new Set<string>();
    const queue = ['dist/bot/main.js', 'dist/worker/main.js', 'dist/bot/cli/snapctl.js'].map((entry) => join(ROOT, entry));
    while (queue.length > 0) {
      const file = queue.pop()!;
      if (seen.has(file)) continue;
      seen.add(file);
      expect(copied.some((dir) => file.startsWith(join(ROOT, dir) + '/')), `${file} is copied into the image`).toBe(true);
      const source = readFileSync(file, 'utf8');
      // tsc's ESM output: `import … from '…';`, `} from '…';` closing a long one, `import '…';`.
      for (const match of source.matchAll(/^(?:(?:import|export)\b.*?\bfrom|\}\s*from|import)\s*['"]([^'"]+)['"];?\s*$/gm)) {
        const specifier = match[1]!;
        if (specifier.startsWith('.')) queue.push(resolve(file, '..', specifier));
        else if (!specifier.startsWith('node:')) {
          const name = specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;
          expect(Object.keys(pkg.dependencies), `${specifier} (imported by ${file}) is a production dependency`).toContain(name);
        }
      }
    }
    expect(seen.size).toBeGreaterThan(20);
  });
});

describe('deploy/docker/healthcheck.mjs (the image HEALTHCHECK)', () => {
  const script = join(ROOT, 'deploy/docker/healthcheck.mjs');
  let server: Server;
  let port = 0;
  let status = 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' || req.url === '/readyz' ? status : 404).end(req.url === '/readyz' ? 'redis: ok' : 'ok');
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    port = (server.address() as { port: number }).port;
  });

  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  const check = (env: Record<string, string>) => run(process.execPath, [script], { env: { PATH: process.env.PATH ?? '', ...env } });

  it('is healthy when /healthz answers 200', async () => {
    status = 200;
    const result = await check({ METRICS_PORT: String(port) });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('GET /healthz');
  });

  it('is unhealthy when the endpoint answers an error or nothing listens', async () => {
    status = 503;
    expect((await check({ METRICS_PORT: String(port), HEALTHCHECK_PATH: '/readyz' })).code).toBe(1);
    const closed = createServer();
    await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
    const closedPort = (closed.address() as { port: number }).port;
    await new Promise<void>((done) => closed.close(() => done()));
    const refused = await check({ METRICS_PORT: String(closedPort) });
    expect(refused.code).toBe(1);
    expect(refused.stdout).toContain('ECONNREFUSED');
  });

  it('says it has nothing to ask when METRICS_PORT is unset', async () => {
    const result = await check({});
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('METRICS_PORT is unset');
  });
});
