import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnapbotCore } from '../../bot/core/core.js';
import { AUTHORITY_KEY_FILE } from '../../shared/authority-keys.js';
import { createLogger } from '../../shared/logger.js';
import type { Policy } from '../../shared/policy.js';
import { loadOrCreateSigner, type Signer } from '../../shared/signing.js';
import { findFreePort, startRedisServer, type RedisServerHandle } from '../redis-server.js';
import type { ChaosHost } from './hosts.js';
import { startNode, sleep, WORKER_MAIN, type NodeProcess } from './processes.js';
import type { Random } from './random.js';

/**
 * What every scenario runs on: a private redis-server (AOF, appendfsync always, as in
 * production) that can be SIGKILLed and started again on the same port and data, a
 * signing key of the run's own (the control plane signs with it, the workers trust its
 * public half), and supervised worker processes that come back after they were killed.
 */

export interface ChaosLog {
  (line: string): void;
}

/** The redis-server of the run, killable and restartable on the same port and directory. */
export class ChaosRedis {
  restarts = 0;

  private constructor(
    readonly port: number,
    readonly dir: string,
    private handle: RedisServerHandle,
  ) {}

  static async start(dir: string): Promise<ChaosRedis> {
    let port = await findFreePort();
    while (port === 6379 || port === 6380) port = await findFreePort();
    return new ChaosRedis(port, dir, await startRedisServer({ port, dir, durable: true }));
  }

  get url(): string {
    return this.handle.url;
  }

  get pid(): number | undefined {
    return this.handle.process.pid;
  }

  /** SIGKILL: no shutdown, no last fsync beyond what `appendfsync always` already did. */
  async kill(): Promise<void> {
    const child = this.handle.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }

  /** Starts redis-server again on the same port and data directory (it replays the AOF). */
  async restart(): Promise<void> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        this.handle = await startRedisServer({ port: this.port, dir: this.dir, durable: true, readyTimeoutMs: 30_000 });
        this.restarts += 1;
        return;
      } catch (error) {
        // The port may take a moment to be free again after the kill.
        if (attempt >= 20) throw error;
        await sleep(250);
      }
    }
  }

  async stop(): Promise<void> {
    await this.handle.stop();
  }
}

export interface ChaosContext {
  /** Everything of the run lives under here (removed at the end unless kept). */
  workDir: string;
  /** SNAPBOT_DATA_DIR of every process: authority.key and its .pub. */
  dataDir: string;
  signer: Signer;
  redis: ChaosRedis;
  log: ChaosLog;
  /** A control plane in this process, signing with the run's key. */
  connectCore(prefix: string, policy: Policy): Promise<SnapbotCore>;
  /** Registers a cleanup (a worker, a control process) that close() runs if the scenario did not (Ctrl-C). */
  defer(cleanup: () => Promise<void>): () => void;
  /** Runs what is still deferred, closes the cores, stops Redis, removes the files. */
  close(): Promise<void>;
}

export async function startChaosContext(options: { log: ChaosLog; keepFiles?: boolean }): Promise<ChaosContext> {
  const workDir = mkdtempSync(join(tmpdir(), 'snapbot-chaos-'));
  const dataDir = join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const signer = loadOrCreateSigner(join(dataDir, AUTHORITY_KEY_FILE), 'chaos');
  const redisDir = join(workDir, 'redis');
  mkdirSync(redisDir, { recursive: true });
  const redis = await ChaosRedis.start(redisDir);
  const cores: SnapbotCore[] = [];
  const cleanups = new Set<() => Promise<void>>();
  return {
    workDir,
    dataDir,
    signer,
    redis,
    log: options.log,
    async connectCore(prefix, policy) {
      const core = await SnapbotCore.connect({
        signer,
        redisUrl: redis.url,
        prefix,
        policy,
        logger: createLogger('chaos-core', 'silent'),
        // As the control process does: ride out Redis restarts.
        redisReconnect: 'forever',
      });
      cores.push(core);
      return core;
    },
    defer(cleanup) {
      cleanups.add(cleanup);
      return () => void cleanups.delete(cleanup);
    },
    async close() {
      await Promise.allSettled([...cleanups].map((cleanup) => cleanup()));
      cleanups.clear();
      await Promise.allSettled(cores.splice(0).map((core) => core.close(1_000)));
      await redis.stop();
      if (!options.keepFiles) rmSync(workDir, { recursive: true, force: true });
    },
  };
}

/** Log lines of a worker that the run counts, over every process it was. */
export const WORKER_PHRASES = ['job done', 'job failed', 'refused a job its authority did not sign', 'redis connection lost; reconnecting', 'redis reconnected'] as const;

export interface WorkerTimings {
  /** BullMQ job lock; a killed worker's jobs are taken again after it lapses. */
  lockMs: number;
  stalledCheckMs: number;
  virshTimeoutMs: number;
  concurrency: number;
}

/**
 * One host's worker as a supervisor would keep it: started, killed (SIGKILL) by the
 * chaos or by a fault (the fake virsh's killParent), and started again after a random
 * short delay, until the scenario stops it.
 */
export class SupervisedWorker {
  /** SIGKILLs sent by the chaos. */
  kills = 0;
  /** Deaths the chaos did not cause (a fault that kills the worker, a crash). */
  crashes = 0;
  /** Processes started after the first. */
  restarts = 0;
  private process: NodeProcess | null = null;
  private readonly finished: NodeProcess[] = [];
  private readonly killedByChaos = new WeakSet<NodeProcess>();
  private stopping = false;
  private loop: Promise<void> | null = null;
  private readyFlag = false;
  private readyAt = 0;

  constructor(
    private readonly context: ChaosContext,
    readonly host: ChaosHost,
    private readonly prefix: string,
    private readonly timings: WorkerTimings,
    private readonly random: Random,
    private readonly restartDelayMs: readonly [number, number],
    private readonly env: Record<string, string> = {},
  ) {}

  get ready(): boolean {
    return this.readyFlag && this.process !== null && this.process.alive();
  }

  /** How long the current process has been ready (0 when it is not). */
  get upMs(): number {
    return this.ready ? Date.now() - this.readyAt : 0;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Every process this worker has been so far. */
  get pids(): number[] {
    return [...this.finished, ...(this.process ? [this.process] : [])].map((proc) => proc.pid);
  }

  /** How many lines with `phrase` every process of this worker logged. */
  count(phrase: (typeof WORKER_PHRASES)[number]): number {
    return [...this.finished, ...(this.process ? [this.process] : [])].reduce((sum, proc) => sum + proc.count(phrase), 0);
  }

  tail(): string {
    return this.process?.tail() ?? this.finished.at(-1)?.tail() ?? '';
  }

  /** Starts the supervision and waits until the first process is ready. */
  async start(timeoutMs = 300_000): Promise<void> {
    if (!this.loop) {
      const undefer = this.context.defer(() => this.stop());
      this.loop = this.supervise().finally(undefer);
    }
    await this.whenReady(timeoutMs);
  }

  /** SIGKILL now; a new process starts after a random delay. */
  async kill(): Promise<void> {
    const proc = this.process;
    if (!proc || !proc.alive()) return;
    this.kills += 1;
    this.killedByChaos.add(proc);
    await proc.kill();
  }

  /** Resolves once a process is up and ready (again). */
  async whenReady(timeoutMs = 300_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ready) {
      if (Date.now() > deadline) throw new Error(`worker of ${this.host.hostId} not ready within ${timeoutMs} ms:\n${this.tail()}`);
      await sleep(100);
    }
  }

  /** Stops for good (SIGTERM, then SIGKILL). */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.process?.stop(8_000);
    await this.loop?.catch(() => undefined);
  }

  private spawn(): NodeProcess {
    return startNode(
      WORKER_MAIN,
      {
        REDIS_URL: this.context.redis.url,
        SNAPBOT_PREFIX: this.prefix,
        SNAPBOT_DATA_DIR: this.context.dataDir,
        HOST_ID: this.host.hostId,
        LIBVIRT_URI: 'qemu:///system',
        WORKER_CONCURRENCY: String(this.timings.concurrency),
        VIRSH_TIMEOUT_MS: String(this.timings.virshTimeoutMs),
        VIRSH_QUERY_TIMEOUT_MS: String(Math.max(this.timings.virshTimeoutMs, 30_000)),
        JOB_LOCK_MS: String(this.timings.lockMs),
        JOB_STALLED_CHECK_MS: String(this.timings.stalledCheckMs),
        HEARTBEAT_INTERVAL_MS: '500',
        HEARTBEAT_TTL_MS: '5000',
        // The periodic re-read of every VM costs four virsh calls per VM; a start does it once.
        INVENTORY_INTERVAL_MS: '3600000',
        SHUTDOWN_GRACE_MS: '5000',
        LOG_LEVEL: 'info',
        ...this.host.env,
        ...this.env,
      },
      this.context.workDir,
      WORKER_PHRASES,
    );
  }

  private async supervise(): Promise<void> {
    for (let generation = 0; !this.stopping; generation += 1) {
      if (generation > 0) this.restarts += 1;
      const proc = this.spawn();
      this.process = proc;
      // A start reads every VM (four fake virsh calls each): slow on a loaded machine.
      void proc.waitFor('worker ready', 600_000).then(
        () => {
          if (this.process === proc) {
            this.readyFlag = true;
            this.readyAt = Date.now();
          }
        },
        () => undefined,
      );
      const { code, signal } = await proc.exited;
      this.readyFlag = false;
      this.process = null;
      this.finished.push(proc);
      if (this.stopping) return;
      if (!this.killedByChaos.has(proc)) {
        this.crashes += 1;
        this.context.log(`worker of ${this.host.hostId} (pid ${proc.pid}) exited on its own (${signal ?? code}); restarting it`);
        // A worker that cannot start (Redis away at start) says so once a second, not in a tight loop.
        if (signal === null) await sleep(1_000);
      }
      await sleep(this.random.int(this.restartDelayMs[0], this.restartDelayMs[1]));
    }
  }
}
