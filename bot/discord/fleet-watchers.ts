/**
 * The fleet runs this bot process keeps a summary message of. Each run is followed at
 * most once per process; `stop` ends them all (the runs go on, and another bot process
 * — or this one after a restart — adopts them once their watcher lease lapses).
 */
export class FleetWatchers {
  private readonly following = new Map<string, Promise<void>>();
  private readonly shutdown = new AbortController();

  has(runId: string): boolean {
    return this.following.has(runId);
  }

  /** Starts `work` for the run unless this process follows it already; says whether it started. */
  follow(runId: string, work: (signal: AbortSignal) => Promise<void>): boolean {
    if (this.following.has(runId) || this.shutdown.signal.aborted) return false;
    const done = work(this.shutdown.signal).finally(() => this.following.delete(runId));
    this.following.set(runId, done);
    return true;
  }

  /** Waits until every run followed so far has finished (tests, and `stop`). */
  async settled(): Promise<void> {
    await Promise.allSettled([...this.following.values()]);
  }

  async stop(): Promise<void> {
    this.shutdown.abort();
    await this.settled();
  }
}
