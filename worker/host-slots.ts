/**
 * How many operations run against libvirt at once on this host (WORKER_CONCURRENCY).
 * BullMQ takes more jobs than that, so that jobs waiting for a busy VM do not hold the
 * slots other VMs need; a job takes a slot only once it holds its VM's lock.
 */
export class HostSlots {
  private running = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {}

  /** Waits for a free slot (first come, first served) and returns the function that frees it. */
  async acquire(): Promise<() => void> {
    if (this.running < this.size) {
      this.running += 1;
    } else {
      // The slot is handed over by release(), so `running` stays counted for us.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.waiting.shift();
      if (next) next();
      else this.running -= 1;
    };
  }

  async withSlot<T>(work: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await work();
    } finally {
      release();
    }
  }
}
