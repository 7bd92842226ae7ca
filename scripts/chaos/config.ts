import type { WorkerTimings } from './cluster.js';
import type { ControlPlaneOptions } from './scenarios/control-plane.js';
import type { LibvirtdOptions } from './scenarios/libvirtd-restart.js';
import type { RedisRestartOptions } from './scenarios/redis-restart.js';
import type { VirshHangOptions } from './scenarios/virsh-hang.js';
import type { WorkerKillsOptions } from './scenarios/worker-kills.js';

/**
 * The sizes of a chaos run. `big` is what `npm run chaos` runs and docs/RELIABILITY.md
 * reports; `small` is the run inside `npm test` (test/integration/chaos.test.ts), a few
 * minutes on a 2-core machine. Every figure can be changed here, nowhere else.
 */

export type ChaosSize = 'big' | 'small';

export interface ChaosConfig {
  size: ChaosSize;
  workerKills: WorkerKillsOptions;
  redisRestart: RedisRestartOptions;
  controlPlane: ControlPlaneOptions;
  virshHang: VirshHangOptions;
  libvirtd: LibvirtdOptions;
}

/**
 * Worker timings of the chaos: a job whose worker died is taken again 15–20 s later (lock
 * 15 s, stall check every 5 s; production: 30 s and 30 s), as test/integration/fleet.test.ts
 * has them. Shorter locks make a live worker's jobs look stalled on a loaded machine (its
 * lock renewal comes late), which is not what the chaos is about.
 */
const TIMINGS: WorkerTimings = { lockMs: 15_000, stalledCheckMs: 5_000, virshTimeoutMs: 60_000, concurrency: 4 };

export function chaosConfig(size: ChaosSize): ChaosConfig {
  const big = size === 'big';
  return {
    size,
    workerKills: {
      hosts: 3,
      jobs: big ? 300 : 60,
      killEveryMs: big ? [3_000, 9_000] : [2_000, 5_000],
      restartDelayMs: [200, 3_000],
      minUptimeMs: big ? [5_000, 20_000] : [1_000, 5_000],
      maxKills: big ? 12 : 2,
      // The small run lets each worker die once (see WorkerKillsOptions.killsPerHost).
      killsPerHost: big ? null : 1,
      killAfterCreate: big ? 6 : 1,
      createLatencyMs: 300,
      forged: { everyMs: big ? 3_000 : 2_000, max: big ? 30 : 9 },
      timings: TIMINGS,
      timeoutMs: big ? 3_600_000 : 600_000,
    },
    redisRestart: {
      hosts: 3,
      jobs: big ? 150 : 30,
      // Redis goes down once this share of the targets is done (the outages spread over it).
      killAtDoneFraction: [0.2, 0.7],
      // big: a restart of a few seconds, then one longer than the job lock (15 s): jobs look stalled after it.
      outagesMs: big ? [[1_000, 4_000], [17_000, 22_000]] : [[1_000, 4_000]],
      createLatencyMs: 400,
      forged: { everyMs: 2_000, max: big ? 15 : 6 },
      timings: TIMINGS,
      timeoutMs: big ? 1_800_000 : 600_000,
    },
    controlPlane: {
      requests: big ? 6 : 4,
      // 15 s: the restarted control process (node, discord.js login, gateway) is up before they expire.
      ttlMinutes: 0.25,
      // The Discord-serving control process sweeps approvals every 2 s (bot/discord/sweeper.ts).
      sweepIntervalMs: 2_000,
      // Polling and a loaded machine: the measured expiry may come this much later than expiry + one sweep.
      slackMs: 1_500,
    },
    virshHang: {
      hosts: 2,
      jobs: big ? 40 : 12,
      hanging: big ? 6 : 3,
      virshTimeoutMs: 5_000,
      createLatencyMs: 200,
      timeoutMs: big ? 600_000 : 240_000,
    },
    libvirtd: {
      hosts: 2,
      jobs: big ? 60 : 16,
      // libvirtd is down this long; a job is tried 5 times over 1 + 2 + 4 + 8 s of backoff.
      downMs: big ? 6_000 : 4_000,
      downAfterDone: 1,
      createLatencyMs: 300,
      timeoutMs: big ? 600_000 : 240_000,
    },
  };
}
