import { describe, expect, it } from 'vitest';
import { VmLocks } from '../../../worker/vm-lock.js';

const tick = () => new Promise((resolve) => setTimeout(resolve, 5));

describe('per-VM locks', () => {
  it('runs jobs for one VM one at a time, in the order they asked', async () => {
    const locks = new VmLocks();
    const events: string[] = [];
    const job = (id: string) =>
      locks.withVmLock('vm-a', async () => {
        events.push(`start ${id}`);
        await tick();
        events.push(`end ${id}`);
      });
    await Promise.all([job('1'), job('2'), job('3')]);
    expect(events).toEqual(['start 1', 'end 1', 'start 2', 'end 2', 'start 3', 'end 3']);
  });

  it('runs jobs for different VMs in parallel', async () => {
    const locks = new VmLocks();
    const events: string[] = [];
    const job = (vm: string) =>
      locks.withVmLock(vm, async () => {
        events.push(`start ${vm}`);
        await tick();
        events.push(`end ${vm}`);
      });
    await Promise.all([job('a'), job('b')]);
    expect(events.slice(0, 2).sort()).toEqual(['start a', 'start b']);
  });

  it('releases the lock when a job throws, and forgets idle VMs', async () => {
    const locks = new VmLocks();
    await expect(locks.withVmLock('vm-a', async () => Promise.reject(new Error('virsh failed')))).rejects.toThrow('virsh failed');
    expect(locks.isBusy('vm-a')).toBe(false);
    await expect(locks.withVmLock('vm-a', async () => 'next')).resolves.toBe('next');
    expect(locks.isBusy('vm-a')).toBe(false);
  });
});
