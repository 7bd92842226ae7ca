/**
 * Per-VM serialization inside one worker: jobs for the same VM run one at a time, in
 * the order they asked; jobs for other VMs run in parallel. libvirt serializes too, but
 * gives up after 30 s with "cannot acquire state change lock", so waiting here instead
 * keeps long operations from failing the ones queued behind them.
 */
export class VmLocks {
  /** The tail of each VM's chain of holders; absent when nobody holds or waits. */
  private readonly tails = new Map<string, Promise<void>>();

  /** True when some job holds or waits for this VM's lock. */
  isBusy(vmKey: string): boolean {
    return this.tails.has(vmKey);
  }

  /**
   * Waits for the VM's earlier holders, then returns the function that releases it.
   * Waiters are served first come, first served.
   */
  async acquireVmLock(vmKey: string): Promise<() => void> {
    const previous = this.tails.get(vmKey) ?? Promise.resolve();
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => held);
    this.tails.set(vmKey, tail);
    await previous;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      release();
      // The last holder leaves no trace, so the map does not grow with every VM ever seen.
      if (this.tails.get(vmKey) === tail) this.tails.delete(vmKey);
    };
  }

  /** Runs `work` while holding the VM's lock. */
  async withVmLock<T>(vmKey: string, work: () => Promise<T>): Promise<T> {
    const release = await this.acquireVmLock(vmKey);
    try {
      return await work();
    } finally {
      release();
    }
  }
}
