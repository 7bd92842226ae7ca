/**
 * Turns a stream of progress updates into at most one delivery per interval, always
 * ending with the latest state. Chat platforms rate-limit message edits (Discord queues
 * them, so uncoalesced progress lags further and further behind).
 */
export class ProgressCoalescer<T> {
  private latest: { value: T } | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private deliveries = 0;

  constructor(
    private readonly deliver: (value: T) => Promise<void>,
    private readonly intervalMs = 1000,
    private readonly onError: (error: unknown) => void = () => undefined,
  ) {}

  /** How many times `deliver` was called. */
  get sent(): number {
    return this.deliveries;
  }

  /** Records a new state; it is delivered now if the interval allows, else later. */
  push(value: T): void {
    this.latest = { value };
    this.schedule();
  }

  /** Delivers the latest state now (waiting for one in flight), e.g. the final result. */
  async flush(value?: T): Promise<void> {
    if (value !== undefined) this.latest = { value };
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    await this.sendLatest();
  }

  private schedule(): void {
    if (this.timer || this.inFlight) return;
    const wait = this.lastSentAt + this.intervalMs - Date.now();
    if (wait <= 0) {
      void this.sendLatest();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.sendLatest();
    }, wait);
  }

  private async sendLatest(): Promise<void> {
    if (!this.latest) return;
    const { value } = this.latest;
    this.latest = undefined;
    this.lastSentAt = Date.now();
    this.deliveries += 1;
    this.inFlight = this.deliver(value).catch(this.onError);
    await this.inFlight;
    this.inFlight = undefined;
    // Updates that arrived during delivery go out after the interval.
    if (this.latest) this.schedule();
  }
}
