import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTable } from './stats.js';

/**
 * Reads V8 CPU profiles (`node --cpu-prof`) of a short process and says where its time
 * went by module: self time per package (`npm:bullmq`), project file (`dist/bot/cli/…`)
 * or Node internal (`node:internal/modules/esm`), and optionally a small flame graph
 * (SVG) whose frames are modules, not functions, so it stays readable and a few KiB.
 *
 *   node dist/scripts/bench/cpu-profile.js [--top N] [--svg out.svg] [--title T] a.cpuprofile …
 *
 * Several profiles (runs of the same command) are added up and divided by their number.
 * Frames in a bundle (snapctl's chunks) are mapped back to the module they came from
 * through the bundle's source map, so a bundle's time is still told by package.
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
  /** Samples per line (1-based) of the function's own code. */
  positionTicks?: { line: number; ticks: number }[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const sourceMaps = new Map<string, { map: SourceMap; folder: string; root: string } | null>();

/**
 * The source file a position in a bundled file came from (its `.map` beside it), or the
 * file itself: the function's start, or `line` (0-based) of its code.
 */
function originalUrl(frame: ProfileNode['callFrame'], line?: number): string {
  if (!frame.url.startsWith('file:')) return frame.url;
  if (!sourceMaps.has(frame.url)) {
    const file = fileURLToPath(frame.url);
    const mapFile = `${file}.map`;
    const root = file.includes('/dist/') ? file.slice(0, file.indexOf('/dist/')) : dirname(file);
    sourceMaps.set(frame.url, existsSync(mapFile) ? { map: new SourceMap(JSON.parse(readFileSync(mapFile, 'utf8'))), folder: dirname(file), root } : null);
  }
  const known = sourceMaps.get(frame.url);
  if (!known) return frame.url;
  const entry = known.map.findEntry(line ?? frame.lineNumber, line === undefined ? frame.columnNumber : 0) as { originalSource?: string };
  if (!entry.originalSource) return frame.url;
  // tsc's maps name the .ts source, esbuild's the source or the package file: either way a path.
  const source = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource) : resolve(known.folder, entry.originalSource);
  return source.includes('/node_modules/') ? source : `/src/${relative(known.root, source)}`;
}

/** The module a frame belongs to: an npm package, a project file, a Node internal folder, or V8's own (program, GC). */
export function moduleOf(frame: ProfileNode['callFrame'], line?: number): string {
  const { functionName } = frame;
  const url = originalUrl(frame, line);
  if (!url) return functionName || '(anonymous)';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  if (url.startsWith('node:')) return url.split('/').slice(0, 3).join('/');
  const project = /\/(dist\/.+)$/.exec(url) ?? /^\/src\/(.+)$/.exec(url);
  return project ? project[1]! : url.replace(/^file:\/\//, '');
}

interface Flame {
  name: string;
  ms: number;
  children: Map<string, Flame>;
}

/**
 * Where a function's own time goes: its module, or, for one function that spans many
 * modules (a bundle's top level, where esbuild puts the ES modules' code one after
 * another), each module in proportion to the samples on its lines.
 */
function selfShares(node: ProfileNode, leaf: string): [string, number][] {
  const ticks = node.positionTicks ?? [];
  const total = ticks.reduce((sum, tick) => sum + tick.ticks, 0);
  if (total === 0 || !node.callFrame.url.startsWith('file:')) return [[leaf, 1]];
  return ticks.map((tick) => [moduleOf(node.callFrame, tick.line - 1), tick.ticks / total]);
}

/** Self time per module and a module-level call tree, in ms per profile. */
export function analyse(profiles: CpuProfile[]): { totalMs: number; self: Map<string, number>; inclusive: Map<string, number>; flame: Flame } {
  const self = new Map<string, number>();
  // Time in samples with the package anywhere on the stack: a CommonJS package's require()s
  // of its own dependencies run under it, so this is roughly what loading it cost.
  const inclusive = new Map<string, number>();
  const flame: Flame = { name: 'all', ms: 0, children: new Map() };
  let totalMs = 0;
  const scale = 1 / profiles.length / 1000;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((node) => [node.id, node]));
    const parent = new Map<number, number>();
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    // The module stack of a node, root first, a module repeated only when another comes between.
    const stacks = new Map<number, string[]>();
    const stackOf = (id: number): string[] => {
      const known = stacks.get(id);
      if (known) return known;
      const node = byId.get(id)!;
      const up = parent.has(id) ? stackOf(parent.get(id)!) : [];
      const name = moduleOf(node.callFrame);
      const stack = name === '(root)' ? up : up[up.length - 1] === name ? up : [...up, name];
      stacks.set(id, stack);
      return stack;
    };
    profile.samples.forEach((id, index) => {
      // timeDeltas[i] is the time since the sample before; it belongs to sample i - 1.
      const ms = (profile.timeDeltas[index + 1] ?? 0) * scale;
      const stack = stackOf(id);
      const leaf = stack[stack.length - 1] ?? '(root)';
      for (const [module, share] of selfShares(byId.get(id)!, leaf)) self.set(module, (self.get(module) ?? 0) + ms * share);
      for (const name of new Set(stack.filter((module) => module.startsWith('npm:')))) inclusive.set(name, (inclusive.get(name) ?? 0) + ms);
      totalMs += ms;
      let frame = flame;
      frame.ms += ms;
      for (const name of stack) {
        let child = frame.children.get(name);
        if (!child) frame.children.set(name, (child = { name, ms: 0, children: new Map() }));
        child.ms += ms;
        frame = child;
      }
    });
  }
  return { totalMs, self, inclusive, flame };
}

/** The group a module is summed into: its package, `snapbot` for project files, or Node/V8. */
export function groupOf(module: string): string {
  if (module.startsWith('npm:')) return module;
  if (module.startsWith('dist/') || /^(bot|shared|worker|scripts)\//.test(module)) return 'snapbot (project code)';
  if (module.startsWith('node:')) return 'node: loaders and built-ins';
  return `v8: ${module}`;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function colourOf(name: string): string {
  if (name.startsWith('npm:')) {
    let hash = 0;
    for (const char of name) hash = (hash * 31 + char.charCodeAt(0)) >>> 0;
    return `hsl(${20 + (hash % 40)},85%,${60 + (hash % 15)}%)`;
  }
  if (name.startsWith('dist/') || /^(bot|shared|worker|scripts)\//.test(name)) return 'hsl(210,70%,70%)';
  if (name.startsWith('node:')) return 'hsl(120,35%,70%)';
  return 'hsl(0,0%,78%)';
}

/** An icicle flame graph (callers above callees), frames narrower than 0.5 % left out. */
export function renderFlameSvg(flame: Flame, title: string): string {
  const width = 1000;
  const rowHeight = 16;
  const minShare = 0.005;
  const rects: string[] = [];
  let depth = 0;
  const visit = (frame: Flame, x: number, level: number) => {
    depth = Math.max(depth, level);
    const w = (frame.ms / flame.ms) * width;
    const y = 24 + level * rowHeight;
    const label = `${frame.name} ${frame.ms.toFixed(1)} ms`;
    const text = w > 40 ? `<text x="${(x + 3).toFixed(1)}" y="${y + 12}">${escapeXml(label.slice(0, Math.floor(w / 6.2)))}</text>` : '';
    rects.push(`<g><title>${escapeXml(label)}</title><rect x="${x.toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="${rowHeight - 1}" fill="${colourOf(frame.name)}"/>${text}</g>`);
    let childX = x;
    for (const child of [...frame.children.values()].sort((a, b) => b.ms - a.ms)) {
      if (child.ms / flame.ms >= minShare) visit(child, childX, level + 1);
      childX += (child.ms / flame.ms) * width;
    }
  };
  visit(flame, 0, 0);
  const height = 24 + (depth + 1) * rowHeight + 20;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="monospace" font-size="11">`,
    `<text x="0" y="14" font-size="13">${escapeXml(title)}</text>`,
    ...rects,
    `<text x="0" y="${height - 6}" fill="#555">frames are modules (orange: npm packages, blue: snapbot, green: Node); hover for ms; narrower than 0.5 % left out</text>`,
    '</svg>',
    '',
  ].join('\n');
}

function main(argv: string[]): void {
  let top = 15;
  let svg: string | undefined;
  let title = 'CPU profile by module';
  const files: string[] = [];
  for (let index = 0; index < argv.length; index += 1) {
    const arg = argv[index]!;
    if (arg === '--top') top = Number(argv[(index += 1)]);
    else if (arg === '--svg') svg = argv[(index += 1)];
    else if (arg === '--title') title = argv[(index += 1)]!;
    else files.push(arg);
  }
  if (files.length === 0) throw new Error('usage: cpu-profile.js [--top N] [--svg out.svg] [--title T] profile.cpuprofile …');
  const profiles = files.map((file) => JSON.parse(readFileSync(file, 'utf8')) as CpuProfile);
  const { totalMs, self, inclusive, flame } = analyse(profiles);
  const row = ([name, ms]: [string, number]) => [name, ms.toFixed(1), `${((ms / totalMs) * 100).toFixed(1)} %`];
  const sorted = (map: Map<string, number>) => [...map.entries()].sort((a, b) => b[1] - a[1]);
  const groups = new Map<string, number>();
  for (const [module, ms] of self) groups.set(groupOf(module), (groups.get(groupOf(module)) ?? 0) + ms);
  process.stdout.write(`${files.length} profile(s), ${totalMs.toFixed(1)} ms sampled per run (mean)\n\n`);
  process.stdout.write(`${formatTable(['self time by package', 'ms', 'share'], sorted(groups).slice(0, top).map(row))}\n\n`);
  process.stdout.write(`${formatTable(['self time by module', 'ms', 'share'], sorted(self).slice(0, top).map(row))}\n\n`);
  process.stdout.write(`${formatTable(['time with the package on the stack', 'ms', 'share'], sorted(inclusive).slice(0, top).map(row))}\n`);
  if (svg) writeFileSync(svg, renderFlameSvg(flame, `${title} (${totalMs.toFixed(0)} ms sampled, mean of ${files.length})`));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) main(process.argv.slice(2));
