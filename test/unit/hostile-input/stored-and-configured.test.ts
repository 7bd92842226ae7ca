/**
 * What snapbot reads from outside the process: job payloads as found in Redis, the policy
 * file, the environment. Anything at all gives a clean result or a refusal (a zod failure,
 * or a VALIDATION SnapbotError naming the problem), never another exception.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify as toYaml } from 'yaml';
import * as config from '../../../shared/config.js';
import { snapshotJobSchema } from '../../../shared/jobs.js';
import { loadPolicy, policySchema } from '../../../shared/policy.js';
import { anyJson, cleanOrValidation, hostileText, RUNS } from './arbitraries.js';

const UUID = 'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff';

/** Job-shaped values: the real fields with hostile values, missing ones and extra ones. */
const jobLike = fc.record(
  {
    kind: fc.oneof(fc.constantFrom('create', 'list', 'info', 'revert', 'delete', 'reboot'), anyJson),
    host: fc.oneof(fc.constantFrom('kvm-1', 'kvm:1', ''), hostileText(), anyJson),
    vm: fc.oneof(fc.constant('web-01'), hostileText(), anyJson),
    uuid: fc.oneof(fc.constant(UUID), hostileText()),
    requestedBy: fc.oneof(fc.constant('discord:1'), hostileText(), anyJson),
    name: fc.oneof(fc.constant('pre'), hostileText(), anyJson),
    mode: fc.oneof(fc.constantFrom('disk-only', 'full', 'FULL'), anyJson),
    description: fc.oneof(hostileText(), anyJson),
    expected: fc.oneof(fc.record({ createdAt: fc.oneof(hostileText(), anyJson) }), anyJson),
    undoPoint: fc.oneof(fc.record({ mode: fc.constantFrom('full', 'x'), keep: fc.oneof(fc.integer(), fc.double()) }), anyJson),
    fleet: fc.oneof(fc.record({ runId: hostileText(), index: fc.integer(), perHost: fc.integer(), global: fc.integer() }), anyJson),
    auth: fc.oneof(fc.record({ keyId: hostileText(), expiresAt: fc.oneof(fc.integer(), fc.double()), signature: hostileText() }), anyJson),
  },
  { requiredKeys: [] },
);

describe('job payloads as found in Redis', () => {
  it('parse or are refused by the job contract; safeParse never throws', () => {
    fc.assert(
      fc.property(fc.oneof(jobLike, anyJson), (value) => {
        const parsed = snapshotJobSchema.safeParse(value);
        expect(typeof parsed.success).toBe('boolean');
        // A payload that went through JSON (as BullMQ stores it) parses the same.
        const stored = JSON.stringify(value);
        if (stored !== undefined) snapshotJobSchema.safeParse(JSON.parse(stored));
      }),
      { numRuns: RUNS },
    );
  });

  it('refuse a job whose names break the name rules', () => {
    for (const vm of ['baseline\u200b', 'a/b', '\u202eweb', ' web']) {
      expect(snapshotJobSchema.safeParse({ kind: 'list', host: 'kvm-1', vm, requestedBy: 'discord:1' }).success).toBe(false);
    }
    expect(snapshotJobSchema.safeParse({ kind: 'list', host: 'kvm-1', vm: 'web-01', requestedBy: 'discord:1' }).success).toBe(true);
  });
});

describe('the policy file', () => {
  const folder = mkdtempSync(join(tmpdir(), 'snapbot-hostile-policy-'));
  // The yaml parser warns (process.emitWarning) about unknown tags such as `!x`: expected here, and noisy.
  beforeAll(() => void vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined));
  afterAll(() => {
    vi.restoreAllMocks();
    rmSync(folder, { recursive: true, force: true });
  });
  let files = 0;

  /** Policy-shaped values: real keys, hostile values. */
  const policyLike = fc.record(
    {
      rules: fc.oneof(
        fc.array(
          fc.record(
            {
              role: fc.oneof(hostileText(), anyJson),
              user: fc.oneof(fc.constant('100000000000000001'), hostileText()),
              actions: fc.oneof(fc.array(fc.constantFrom('create', 'list', 'revert', 'reboot')), anyJson),
              hosts: fc.oneof(fc.array(hostileText()), anyJson),
              vms: fc.oneof(fc.array(hostileText()), anyJson),
            },
            { requiredKeys: [] },
          ),
          { maxLength: 4 },
        ),
        anyJson,
      ),
      approvals: fc.oneof(fc.array(fc.record({ actions: fc.constant(['revert']), required: fc.oneof(fc.integer(), fc.double()), ttlMinutes: anyJson }, { requiredKeys: [] })), anyJson),
      fleet: anyJson,
      undoPoints: anyJson,
      breakGlass: anyJson,
    },
    { requiredKeys: [] },
  );

  const text = fc.oneof(
    policyLike.map((value) => toYaml(value)),
    policyLike.map((value) => JSON.stringify(value)),
    anyJson.map((value) => JSON.stringify(value) ?? ''),
    hostileText(200),
    fc.constantFrom(
      'a: &a [*a]', // a recursive alias
      'a: &x [1]\nb: [*x, *x, *x, *x]\nc: [*b, *b]', // aliases of aliases
      '---\nrules: []\n---\nrules: []', // two documents
      '!!js/function "x"',
      'rules: !!binary AAAA',
      '{"rules": [], "__proto__": {"polluted": true}}',
      'rules:\n  - role: x\n    actions: [list]\n    hosts: ["*****************************************"]',
    ),
  );

  it('loads as a policy or fails with VALIDATION naming the file', () => {
    fc.assert(
      fc.property(text, fc.constantFrom('yaml', 'yml', 'json'), (content, extension) => {
        const path = join(folder, `policy-${(files += 1)}.${extension}`);
        writeFileSync(path, content);
        const result = cleanOrValidation(() => loadPolicy(path));
        if (result instanceof Error) expect(result.message).toContain(path);
        else expect(policySchema.safeParse(result).success).toBe(true);
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      { numRuns: RUNS },
    );
  });
});

describe('the environment', () => {
  /** Every environment schema the config module exports (worker, control process, bot, snapctl…). */
  const schemas = Object.entries(config).filter(([name, value]) => name.endsWith('EnvSchema') && typeof (value as { safeParse?: unknown }).safeParse === 'function');
  const names = [
    'REDIS_URL', 'HOST_ID', 'LIBVIRT_URI', 'VIRSH_PATH', 'DISCORD_TOKEN', 'DISCORD_APP_ID', 'DISCORD_GUILD_ID', 'DISCORD_CHANNEL_ID', 'DISCORD_API_URL',
    'SNAPBOT_POLICY', 'SNAPBOT_PREFIX', 'LOG_LEVEL', 'WORKER_CONCURRENCY', 'VIRSH_TIMEOUT_MS', 'HEARTBEAT_TTL_MS', 'METRICS_PORT', 'REDIS_SENTINELS',
    'REDIS_SENTINEL_NAME', 'REDIS_CLUSTER_NODES', 'SNAPBOT_DATA_DIR', 'BOT_JOB_TIMEOUT_MS',
  ]; // prettier-ignore
  const value = fc.oneof(
    hostileText(),
    fc.constantFrom('', ' ', '0', '-1', '1e309', 'NaN', '0x10', '123456789012345678', 'redis://', 'redis://h:1', 'unix:///x', 'http://[::1', 'debug'),
  );
  const env = fc.dictionary(fc.oneof(fc.constantFrom(...names), hostileText(6)), value, { maxKeys: 12 });

  it('gives a config or VALIDATION naming the variable, for every schema', () => {
    expect(schemas.length).toBeGreaterThanOrEqual(3);
    fc.assert(
      fc.property(env, (variables) => {
        for (const [, schema] of schemas) {
          const result = cleanOrValidation(() => config.parseEnv(schema as Parameters<typeof config.parseEnv>[0], variables));
          if (result instanceof Error) expect(result.message).toMatch(/^Invalid configuration: /);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
