import type { ChaosConfig } from './config.js';
import type { ChaosContext } from './cluster.js';
import { Random } from './random.js';
import type { ScenarioResult } from './report.js';
import { controlPlaneScenario } from './scenarios/control-plane.js';
import { libvirtdScenario } from './scenarios/libvirtd-restart.js';
import { redisRestartScenario } from './scenarios/redis-restart.js';
import { virshHangScenario } from './scenarios/virsh-hang.js';
import { workerKillsScenario } from './scenarios/worker-kills.js';

/** The five scenarios, by key; each gets its own random source from the run's seed. */
export const SCENARIOS = {
  '1': (context: ChaosContext, config: ChaosConfig, random: Random) => workerKillsScenario(context, config.workerKills, random.fork('1')),
  '2': (context: ChaosContext, config: ChaosConfig, random: Random) => redisRestartScenario(context, config.redisRestart, random.fork('2')),
  '3': (context: ChaosContext, config: ChaosConfig, random: Random) => controlPlaneScenario(context, config.controlPlane, random.fork('3')),
  '4': (context: ChaosContext, config: ChaosConfig, random: Random) => virshHangScenario(context, config.virshHang, random.fork('4')),
  '5': (context: ChaosContext, config: ChaosConfig, random: Random) => libvirtdScenario(context, config.libvirtd, random.fork('5')),
} as const;

export type ScenarioKey = keyof typeof SCENARIOS;

export async function runScenarios(context: ChaosContext, config: ChaosConfig, seed: number, only: readonly ScenarioKey[], onResult?: (result: ScenarioResult) => void): Promise<ScenarioResult[]> {
  const random = new Random(seed);
  const results: ScenarioResult[] = [];
  for (const key of only) {
    context.log(`scenario ${key}: starting`);
    // Reported with the run's seed: `--seed S --only K` replays this scenario's schedule.
    const result = { ...(await SCENARIOS[key](context, config, random)), seed };
    onResult?.(result);
    results.push(result);
  }
  return results;
}

/** The result's lines for a report: notes, then problems. */
export function describeResult(result: ScenarioResult): string[] {
  return [
    `${result.key} ${result.title}: ${result.ok ? 'ok' : 'FAILED'} in ${(result.durationMs / 1000).toFixed(1)} s (seed ${result.seed})`,
    ...result.notes.map((note) => `  - ${note}`),
    ...result.problems.map((problem) => `  ! ${problem}`),
  ];
}
