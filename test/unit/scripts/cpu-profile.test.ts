import { describe, expect, it } from 'vitest';
import { analyse, groupOf, moduleOf, renderFlameSvg } from '../../../scripts/bench/cpu-profile.js';

/** The start-up profile summary of docs/BENCHMARKS.md: time told by package, and a flame graph of modules. */

const frame = (url: string, functionName = 'f') => ({ functionName, url, lineNumber: 0, columnNumber: 0 });

describe('moduleOf', () => {
  it('names npm packages, scoped ones too, Node internals by folder, and V8 by its own names', () => {
    expect(moduleOf(frame('file:///app/node_modules/bullmq/dist/cjs/classes/queue.js'))).toBe('npm:bullmq');
    expect(moduleOf(frame('file:///app/node_modules/@ioredis/commands/built/index.js'))).toBe('npm:@ioredis/commands');
    expect(moduleOf(frame('node:internal/modules/esm/loader'))).toBe('node:internal/modules/esm');
    expect(moduleOf(frame('', '(garbage collector)'))).toBe('(garbage collector)');
    expect(moduleOf(frame('file:///no/such/checkout/dist/bot/cli/snapctl.js'))).toBe('dist/bot/cli/snapctl.js');
  });

  it('groups them by package, project code and Node', () => {
    expect(groupOf('npm:zod')).toBe('npm:zod');
    expect(groupOf('dist/bot/cli/snapctl.js')).toBe('snapbot (project code)');
    expect(groupOf('shared/jobs.ts')).toBe('snapbot (project code)');
    expect(groupOf('node:internal/modules/cjs')).toBe('node: loaders and built-ins');
    expect(groupOf('(program)')).toBe('v8: (program)');
  });
});

describe('analyse', () => {
  // root → esm loader → bullmq (which requires ioredis); samples: 2 ms in bullmq, 3 ms in ioredis, 1 ms in the loader.
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('', '(root)'), children: [2] },
      { id: 2, callFrame: frame('node:internal/modules/esm/loader'), children: [3] },
      { id: 3, callFrame: frame('file:///app/node_modules/bullmq/dist/cjs/index.js'), children: [4] },
      { id: 4, callFrame: frame('file:///app/node_modules/ioredis/built/index.js') },
    ],
    samples: [3, 3, 4, 4, 4, 2],
    // Each delta is the time since the sample before: it belongs to the sample before.
    timeDeltas: [0, 1000, 1000, 1000, 1000, 1000, 1000],
    startTime: 0,
    endTime: 6000,
  };

  it('gives each module its own time and each package the time spent under it', () => {
    const { totalMs, self, inclusive } = analyse([profile]);
    expect(totalMs).toBe(6);
    expect(Object.fromEntries(self)).toEqual({ 'npm:bullmq': 2, 'npm:ioredis': 3, 'node:internal/modules/esm': 1 });
    expect(inclusive.get('npm:bullmq')).toBe(5);
    expect(inclusive.get('npm:ioredis')).toBe(3);
  });

  it('averages several runs', () => {
    expect(analyse([profile, profile]).totalMs).toBe(6);
  });

  it('draws the module tree as an SVG with a titled frame per module', () => {
    const svg = renderFlameSvg(analyse([profile]).flame, 'start-up');
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    for (const name of ['npm:bullmq 5.0 ms', 'npm:ioredis 3.0 ms', 'node:internal/modules/esm 6.0 ms']) expect(svg).toContain(`<title>${name}</title>`);
  });
});
