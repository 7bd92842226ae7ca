import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { formatElapsed, ProgressLine, renderProgressLine, type ProgressStream } from '../../../../bot/cli/progress-line.js';

/** Issue 12: a long job shows its elapsed time on a terminal, and nothing changes elsewhere. */

function fakeStream(isTTY: boolean, columns = 80): ProgressStream & { output: () => string } {
  let written = '';
  return {
    isTTY,
    columns,
    write: (text: string) => (written += text),
    output: () => written,
  };
}

describe('formatElapsed', () => {
  it('counts whole seconds, then minutes and seconds, then hours and minutes', () => {
    expect(formatElapsed(0)).toBe('0 s');
    expect(formatElapsed(999)).toBe('0 s');
    expect(formatElapsed(12_400)).toBe('12 s');
    expect(formatElapsed(59_999)).toBe('59 s');
    expect(formatElapsed(60_000)).toBe('1 min 00 s');
    expect(formatElapsed(125_000)).toBe('2 min 05 s');
    expect(formatElapsed(3_599_000)).toBe('59 min 59 s');
    expect(formatElapsed(3_720_000)).toBe('1 h 02 min');
    expect(formatElapsed(-5)).toBe('0 s');
  });
});

describe('renderProgressLine', () => {
  it('is the status, an ellipsis and the time', () => {
    expect(renderProgressLine('running: create on web-01', 12_000)).toBe('running: create on web-01 … 12 s');
  });

  it('fits the terminal, so that it can be rewritten in place', () => {
    const line = renderProgressLine(`running: create on ${'w'.repeat(200)}`, 125_000, 40);
    expect([...line]).toHaveLength(39);
    expect(line).toMatch(/^running: create on w+… … 2 min 05 s$/);
  });

  it('writes out control characters and keeps to one line', () => {
    const line = renderProgressLine('running: create on evil\u001b[2J\nvm\tx', 1_000);
    expect(line).toBe('running: create on evil<U+001B>[2J vm x … 1 s');
  });
});

describe('ProgressLine', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('not on a terminal: one plain line per status, as before, and nothing more', () => {
    const stream = fakeStream(false);
    const line = new ProgressLine(stream);
    line.update('queued job 1 on host kvm-a');
    vi.advanceTimersByTime(5_000);
    line.update('running: create on web-01');
    vi.advanceTimersByTime(30_000);
    line.stop();
    expect(stream.output()).toBe('queued job 1 on host kvm-a\nrunning: create on web-01\n');
  });

  it('with --json: nothing at all, even on a terminal', () => {
    const stream = fakeStream(true);
    const line = new ProgressLine(stream, { quiet: true });
    line.update('running: create on web-01');
    vi.advanceTimersByTime(3_000);
    line.stop();
    expect(stream.output()).toBe('');
  });

  it('on a terminal: rewrites the live line every second with the time since the start', () => {
    const stream = fakeStream(true);
    const line = new ProgressLine(stream);
    vi.advanceTimersByTime(500);
    line.update('running: create on web-01');
    expect(stream.output()).toBe('\r\x1b[2Krunning: create on web-01 … 0 s');
    vi.advanceTimersByTime(1_000);
    vi.advanceTimersByTime(1_000);
    expect(stream.output()).toBe(['', 'running: create on web-01 … 0 s', 'running: create on web-01 … 1 s', 'running: create on web-01 … 2 s'].join('\r\x1b[2K'));
    expect(stream.output()).not.toContain('\n');
  });

  it('on a terminal: a new status leaves the previous one as it was, and stop() ends the line', () => {
    const stream = fakeStream(true);
    const line = new ProgressLine(stream);
    line.update('queued job 1 on host kvm-a');
    vi.advanceTimersByTime(2_000);
    line.update('running: create on web-01');
    vi.advanceTimersByTime(12_000);
    line.stop();
    const screen = stream
      .output()
      .split('\n')
      .map((row) => row.split('\r\x1b[2K').at(-1));
    expect(screen).toEqual(['queued job 1 on host kvm-a … 2 s', 'running: create on web-01 … 14 s', '']);
    const length = stream.output().length;
    vi.advanceTimersByTime(5_000);
    expect(stream.output()).toHaveLength(length);
  });

  it('prints nothing on stop() when no status came', () => {
    const stream = fakeStream(true);
    new ProgressLine(stream).stop();
    expect(stream.output()).toBe('');
  });

  it('never keeps the process alive: its timer is unref()ed', () => {
    vi.useRealTimers();
    const unref = vi.spyOn(globalThis, 'setInterval');
    const line = new ProgressLine(fakeStream(true));
    line.update('running: create on web-01');
    const timer = unref.mock.results[0]!.value as NodeJS.Timeout;
    expect(timer.hasRef()).toBe(false);
    line.stop();
    unref.mockRestore();
  });
});
