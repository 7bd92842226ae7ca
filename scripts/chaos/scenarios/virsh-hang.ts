import { readFileSync } from 'node:fs';
import type { ChaosContext } from '../cluster.js';
import type { Random } from '../random.js';
import { emptyFigures, type ScenarioResult } from '../report.js';
import { runFleetScenario, workerKills, workerRestarts, wrongRecordNotes } from './fleet-scenario.js';

/**
 * Scenario 4: virsh hangs (the fake's `hang` fault: it sleeps until killed, before
 * acting) for the creates of some VMs. Those jobs fail TIMEOUT once VIRSH_TIMEOUT_MS has
 * passed and their virsh (process group) is killed; the worker goes on and every other
 * target is done. Each job ends exactly once: a TIMEOUT of a mutation is not retried.
 */

export interface VirshHangOptions {
  hosts: number;
  jobs: number;
  /** VMs whose snapshot-create-as hangs. */
  hanging: number;
  virshTimeoutMs: number;
  createLatencyMs: number;
  timeoutMs: number;
}

export async function virshHangScenario(context: ChaosContext, options: VirshHangOptions, random: Random): Promise<ScenarioResult> {
  const hanging = new Set<string>();
  let hostIndex = 0;
  const leftovers: number[] = [];
  const outcome = await runFleetScenario(
    context,
    {
      label: 's4',
      hosts: options.hosts,
      jobs: options.jobs,
      name: 'chaos-hang',
      timings: { lockMs: 15_000, stalledCheckMs: 5_000, virshTimeoutMs: options.virshTimeoutMs, concurrency: 4 },
      restartDelayMs: [500, 500],
      createLatencyMs: options.createLatencyMs,
      forged: { everyMs: 0, max: 0 },
      timeoutMs: options.timeoutMs,
      faults(host, faultRandom) {
        // Spread over the hosts: roughly hanging / hosts each, chosen by the seed.
        const share = Math.floor(options.hanging / options.hosts) + (hostIndex < options.hanging % options.hosts ? 1 : 0);
        hostIndex += 1;
        const chosen = faultRandom.sample(host.vms, share);
        for (const vm of chosen) hanging.add(`${vm.name}@${host.hostId}`);
        return chosen.map((vm) => ({ match: { subcommand: 'snapshot-create-as', domain: vm.uuid }, hang: true }));
      },
      inspect(hosts) {
        // The hung virsh processes were killed with their process group, not left behind.
        for (const host of hosts) {
          // Processes, not commands: a create runs on a command line with its read-back, and
          // the process's own argv (that line) is what /proc shows.
          for (const call of host.fake.processes()) {
            const creates = call.commands ? call.commands.some(([name]) => name === 'snapshot-create-as') : call.argv.includes('snapshot-create-as');
            if (creates && isSameCallRunning(call)) leftovers.push(call.pid);
          }
        }
        return [];
      },
      expect: (target) => (hanging.has(`${target.vm}@${target.host}`) ? { state: 'failed', code: 'TIMEOUT' } : { state: 'done' }),
    },
    random,
  );
  const { check, workers } = outcome;
  const problems = [...outcome.problems];
  if (leftovers.length > 0) problems.push(`hung virsh processes still running: ${leftovers.join(', ')}`);
  if (workers.some((worker) => worker.kills + worker.crashes > 0)) problems.push('a worker died during the hangs');
  const figures = {
    ...emptyFigures(),
    jobs: options.jobs,
    done: check?.done ?? 0,
    failedAsExpected: check ? check.failed : 0,
    workerKills: workerKills(workers),
    workerRestarts: workerRestarts(workers),
    lost: check ? check.lost : options.jobs,
    duplicates: check?.duplicates ?? 0,
    wrongRecords: check?.wrongRecords.length ?? 0,
  };
  return {
    key: '4',
    title: 'virsh hangs',
    ok: problems.length === 0 && figures.lost === 0 && figures.duplicates === 0 && figures.done === options.jobs - hanging.size && figures.failedAsExpected === hanging.size,
    seed: random.seed,
    durationMs: outcome.durationMs,
    figures,
    notes: [
      ...wrongRecordNotes(check),
      `${hanging.size} creates hung (${[...hanging].join(', ')}); each failed TIMEOUT after VIRSH_TIMEOUT_MS=${options.virshTimeoutMs} ms with its virsh killed (${leftovers.length} left running)`,
    ],
    problems,
  };
}

/**
 * True when the process that made `call` is still alive. Its pid alone says nothing: the
 * chaos run starts thousands of short virsh processes and pids wrap (pid_max is 32768 on
 * many machines), so a finished call's pid may belong to a newer process. The process
 * counts only if its command line still ends with the call's arguments and it is not a
 * zombie waiting for its parent.
 */
function isSameCallRunning(call: { pid: number; argv: string[] }): boolean {
  try {
    const stat = readFileSync(`/proc/${call.pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return false;
    const commandLine = readFileSync(`/proc/${call.pid}/cmdline`, 'utf8').split('\0').filter((part, index, all) => index < all.length - 1 || part !== '');
    const tail = commandLine.slice(commandLine.length - call.argv.length);
    return tail.length === call.argv.length && tail.every((part, index) => part === call.argv[index]);
  } catch {
    return false; // gone, as it should be
  }
}
