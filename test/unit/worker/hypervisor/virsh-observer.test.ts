import { describe, expect, it } from 'vitest';
import { VirshHypervisor, type VirshCallObservation } from '../../../../worker/hypervisor/virsh.js';
import type { VirshRunResult, VirshRunner } from '../../../../worker/hypervisor/virsh-runner.js';
import { createLogger } from '../../../../shared/logger.js';

const UUID = 'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff';

function runnerAnswering(reply: (args: readonly string[]) => Partial<VirshRunResult>): VirshRunner {
  return async ({ args }) => ({ exitCode: 0, signal: undefined, stdout: '', stderr: '', durationMs: 42, timedOut: false, ...reply(args) });
}

function observed(runner: VirshRunner) {
  const calls: VirshCallObservation[] = [];
  const hypervisor = new VirshHypervisor({ virshPath: 'virsh', uri: 'qemu:///system', timeoutMs: 60_000, queryTimeoutMs: 5_000, hostId: 'kvm-01', runner, observer: (call) => calls.push(call) });
  return { hypervisor, calls };
}

describe('the virsh adapter observer', () => {
  it('is told of each call: its subcommand, duration and no failure when it succeeded', async () => {
    const { hypervisor, calls } = observed(runnerAnswering(() => ({ stdout: 'Compiled against library: libvirt 9.0.0\nRunning against daemon: 9.0.0\n' })));
    await hypervisor.version();
    expect(calls).toEqual([{ subcommand: 'version', durationMs: 42, failure: null }]);
  });

  it('is told the error code of a failed call, a timeout and a missing virsh included', async () => {
    const { hypervisor, calls } = observed(
      runnerAnswering((args) => {
        if (args.includes('domstate')) return { exitCode: 1, stderr: 'error: failed to connect to the hypervisor\n' };
        if (args.includes('snapshot-revert')) return { exitCode: undefined, signal: 'SIGKILL', timedOut: true, durationMs: 60_000 };
        return { exitCode: undefined, durationMs: 0, spawnError: { code: 'ENOENT', message: 'spawn virsh ENOENT' } };
      }),
    );
    await expect(hypervisor.domainState(UUID)).rejects.toMatchObject({ code: 'HYPERVISOR_UNAVAILABLE' });
    await expect(hypervisor.revertSnapshot(UUID, 'base')).rejects.toMatchObject({ code: 'TIMEOUT' });
    await expect(hypervisor.deleteSnapshot(UUID, 'base')).rejects.toMatchObject({ code: 'HYPERVISOR_UNAVAILABLE' });
    expect(calls).toEqual([
      { subcommand: 'domstate', durationMs: 42, failure: 'HYPERVISOR_UNAVAILABLE' },
      { subcommand: 'snapshot-revert', durationMs: 60_000, failure: 'TIMEOUT' },
      { subcommand: 'snapshot-delete', durationMs: 0, failure: 'HYPERVISOR_UNAVAILABLE' },
    ]);
  });

  it("keeps observing through a job's view of the adapter (withLogger)", async () => {
    const { hypervisor, calls } = observed(runnerAnswering(() => ({ stdout: 'running\n' })));
    await hypervisor.withLogger(createLogger('test', 'silent')).domainState(UUID);
    expect(calls.map((call) => call.subcommand)).toEqual(['domstate']);
  });
});
