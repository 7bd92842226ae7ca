/**
 * Everything a benchmark section starts (Redis, workers, fake hosts, domains) registers
 * how to undo it here; the stack is unwound in reverse order at the end of the section,
 * on an error, and on Ctrl-C.
 */
export class CleanupStack {
  private readonly steps: { label: string; undo: () => Promise<void> | void }[] = [];

  /** Registers `undo` to run before everything registered earlier. */
  defer(label: string, undo: () => Promise<void> | void): void {
    this.steps.push({ label, undo });
  }

  /** Runs every registered step, newest first; a failing step is reported and the rest still run. */
  async unwind(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()!;
      try {
        await step.undo();
      } catch (error) {
        process.stderr.write(`bench: cleanup "${step.label}" failed: ${error instanceof Error ? error.message : String(error)}\n`);
      }
    }
  }
}
