import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Worker } from 'bullmq';
import { SnapbotCore } from '../../bot/core/core.js';
import { startBot } from '../../bot/discord/bot.js';
import { heartbeatSchema, type Heartbeat } from '../../shared/hosts.js';
import type { JobResult } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { hostQueueName, registryKeys } from '../../shared/queues.js';
import { bullmqConnectionOptions, redisOptionsFromUrl } from '../../shared/redis.js';
import { FakeDiscord } from '../../test/fixtures/fake-discord/fake-discord.js';
import { guildFixture } from '../../test/helpers/discord-bot.js';
import type { CleanupStack } from './cleanup-stack.js';
import { startPrivateRedis } from './private-redis.js';
import { printHeading, printTable, progress, type SectionResult } from './report.js';
import { ms, summarize } from './stats.js';
import { benchAuthority } from './processes.js';

export interface DiscordBenchOptions {
  interactions: number;
  autocompleteVms: number;
  autocompletes: number;
  progressSeconds: number;
  durableRedis: boolean;
}

const PREFIX = '{snapbot-bench-discord}';
const HOSTS = 20;

/** Writes heartbeats for HOSTS hosts holding `vmCount` VMs between them, as live workers would. */
async function seedInventory(core: SnapbotCore, vmCount: number): Promise<void> {
  const keys = registryKeys(PREFIX);
  const now = new Date().toISOString();
  for (let host = 0; host < HOSTS; host += 1) {
    const hostId = `bench-kvm-${String(host).padStart(2, '0')}`;
    const heartbeat: Heartbeat = heartbeatSchema.parse({
      hostId, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
      capabilities: { externalRevert: false, externalDelete: true },
      vms: Array.from({ length: Math.ceil(vmCount / HOSTS) }, (_, index) => ({
        name: `vm-${String(host * 1000 + index).padStart(5, '0')}`, uuid: randomUUID(), state: 'running',
        snapshots: [{ name: 'nightly', location: 'internal' }],
      })),
      inventoryAt: now, inventoryError: null, concurrency: 4, startedAt: now, lastSeen: now, workerVersion: 'bench',
    }); // prettier-ignore
    await core.redis.multi().sadd(keys.hosts, hostId).set(keys.host(hostId), JSON.stringify(heartbeat)).set(keys.alive(hostId), now, 'PX', 3_600_000).exec();
  }
}

/**
 * The Discord front end through the real discord.js client and the in-project fake
 * Discord on loopback: interaction → acknowledgement latency, autocomplete over a large
 * inventory, and how many edits a job that reports progress for a minute causes.
 */
export async function runDiscordBench(options: DiscordBenchOptions, cleanups: CleanupStack): Promise<SectionResult> {
  printHeading('Discord: acknowledgement, autocomplete, edits');
  const redis = await startPrivateRedis(cleanups, options.durableRedis);
  const guild = guildFixture();
  const fake = await FakeDiscord.start(guild.options);
  cleanups.defer('fake discord', () => fake.stop());
  const logger = createLogger('bench-bot', 'silent');
  const core = await SnapbotCore.connect({ signer: benchAuthority(), redisUrl: redis.url, prefix: PREFIX, logger });
  cleanups.defer('core', () => core.close());
  await seedInventory(core, options.autocompleteVms);
  const bot = await startBot({ token: guild.options.token, guildId: guild.options.guildId, apiUrl: fake.apiUrl, jobTimeoutMs: (options.progressSeconds + 60) * 1000, core, logger });
  cleanups.defer('bot', () => bot.stop());

  progress(`${options.interactions} interactions → acknowledgement`);
  const acks: number[] = [];
  for (let index = 0; index < options.interactions; index += 1) {
    const handle = await fake.slashCommand(guild.viewer.id, 'hosts');
    await handle.waitForCallback(5_000);
    acks.push(handle.ackLatencyMs() ?? Number.NaN);
  }
  const ack = summarize(acks);

  progress(`${options.autocompletes} autocompletes over ${options.autocompleteVms} VMs on ${HOSTS} hosts`);
  const completions: number[] = [];
  for (let index = 0; index < options.autocompletes; index += 1) {
    const typed = String((index * 7919) % 20_000).slice(0, 1 + (index % 4));
    const started = performance.now();
    await fake.autocomplete(guild.viewer.id, 'snapshot', [{ name: 'list', type: 1, options: [{ name: 'vm', type: 3, value: typed, focused: true }] }]);
    completions.push(performance.now() - started);
  }
  const complete = summarize(completions);

  progress(`one job reporting progress every 100 ms for ${options.progressSeconds} s`);
  // A stand-in worker for one host: reports progress ten times a second, then a result.
  const hostId = 'bench-kvm-00';
  const worker = new Worker(
    hostQueueName(hostId),
    async (job): Promise<JobResult> => {
      const started = Date.now();
      for (let tick = 0; Date.now() - started < options.progressSeconds * 1000; tick += 1) {
        await job.updateProgress({ phase: 'running', host: hostId, message: `step ${tick}` });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      const data = job.data as { vm: string; name: string };
      return {
        kind: 'create', host: hostId, vm: { name: data.vm, uuid: randomUUID() }, durationMs: Date.now() - started, mode: 'disk-only', note: null, recovered: false,
        snapshot: { name: data.name, createdAt: new Date().toISOString(), state: 'disk-snapshot', location: 'external', memory: false, parent: null, current: true, description: null, jobId: job.id ?? null },
      }; // prettier-ignore
    },
    { connection: bullmqConnectionOptions(redisOptionsFromUrl(redis.url)), prefix: PREFIX },
  );
  cleanups.defer('stand-in worker', () => worker.close());
  const handle = await fake.slashCommand(guild.admin.id, 'snapshot', [
    { name: 'create', type: 1, options: [{ name: 'vm', type: 3, value: 'vm-00000' }, { name: 'name', type: 3, value: 'bench' }] },
  ]);
  const final = await handle.waitForOriginal((message) => JSON.stringify(message.embeds).includes('created'), (options.progressSeconds + 60) * 1000);
  const edits = fake.requests().filter((request) => request.method === 'PATCH' && request.path.includes(handle.token)).length;
  const progressEvents = options.progressSeconds * 10;

  printTable(
    'Latency (ms)',
    ['figure', 'n', 'p50', 'p90', 'p99', 'max'],
    [
      ['interaction → acknowledgement', String(ack.count), ms(ack.p50), ms(ack.p90), ms(ack.p99), ms(ack.max)],
      [`autocomplete, ${options.autocompleteVms} VMs`, String(complete.count), ms(complete.p50), ms(complete.p90), ms(complete.p99), ms(complete.max)],
    ],
  );
  printTable(
    'Edits of one reply',
    ['progress events', 'seconds', 'edits sent', 'final edit history'],
    [[String(progressEvents), String(options.progressSeconds), String(edits), String(final.history.length - 1)]],
  );
  return {
    section: 'discord',
    checks: [
      { what: 'interaction → ack p99', target: '< 100 ms', measured: `${ms(ack.p99)} ms`, met: ack.p99 < 100 },
      { what: `autocomplete p99, ${options.autocompleteVms} VMs`, target: '< 50 ms', measured: `${ms(complete.p99)} ms`, met: complete.p99 < 50 },
      { what: `edits for ${options.progressSeconds} s of progress`, target: `≤ ${options.progressSeconds + 2}`, measured: String(edits), met: edits <= options.progressSeconds + 2 },
    ],
  };
}
