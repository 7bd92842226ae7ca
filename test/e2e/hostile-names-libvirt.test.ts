/**
 * Hostile snapshot names against the real libvirt + QEMU: shell metacharacters, names
 * that look like options, quotes, XML specials, numbers, spaces, right-to-left scripts
 * and emoji, names at the length limit — and the names snapbot must refuse (hidden and
 * direction-changing characters, control characters, `/`, blanks at either end, `.`,
 * `..`, names libvirt cannot hold).
 *
 * Every name goes through the real path: core (validation, a job signed by the checkout's
 * authority key) → Redis → the worker process → virsh → libvirtd → QEMU's qcow2. A name
 * snapbot accepts must come back as itself from create, list, info and delete, and reach
 * virsh as one argv element; a name it refuses must be VALIDATION before anything is
 * queued, also when a signed job carrying it is written straight to the queue, and virsh
 * must never see it. virsh is the real one, behind a two-line sh shim that records each
 * argv (one write per call) before it execs virsh.
 *
 * Shut-off tiny domains: a full snapshot of one is an internal qcow2 snapshot made by
 * qemu-img, the quickest kind there is. The accepted names are dealt out over a few of
 * them, which the worker serves side by side (one job at a time per VM): every virsh call
 * takes a while on a loaded machine, and there are about four per name.
 */
import { Job, Queue } from 'bullmq';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SnapbotCore } from '../../bot/core/core.js';
import { createSnapshot, deleteSnapshot, listSnapshots, snapshotInfo } from '../../bot/core/snapshots.js';
import { SnapbotError } from '../../shared/errors.js';
import { signJob } from '../../shared/job-signing.js';
import type { SnapshotJob } from '../../shared/jobs.js';
import { createLogger } from '../../shared/logger.js';
import { policySchema } from '../../shared/policy.js';
import { hostQueueName } from '../../shared/queues.js';
import { splitCommandString } from '../fixtures/virsh-command-string.mjs';
import { testAuthority } from '../helpers/authority.js';
import { spawnNode, WORKER_MAIN, type SpawnedProcess } from '../helpers/processes.js';
import { startTestRedis, uniquePrefix, type TestRedis } from '../helpers/redis.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

// ─── the names ───────────────────────────────────────────────────────────────────────────

interface HostileName {
  name: string;
  why: string;
  /** `accepted`: create, list, info and delete work with it as itself; `refused`: VALIDATION, and virsh never sees it. */
  expect: 'accepted' | 'refused';
}

const names: HostileName[] = [];
const accept = (why: string, ...list: string[]) => list.forEach((name) => names.push({ name, why, expect: 'accepted' }));
const refuse = (why: string, ...list: string[]) => list.forEach((name) => names.push({ name, why, expect: 'refused' }));
const utf8Bytes = (text: string) => Buffer.byteLength(text, 'utf8');

// A shell would read these; snapbot never runs one, so they are just characters.
// Every character a shell treats specially, a few to a name (each name costs a create, an info and a delete).
accept('shell metacharacters', 'a;b|c', 'a&b$c', 'a`b\\c', 'a<b>c', 'a(b)c{d}', 'a[b]c*', 'a?b~c!', 'a#b%c^d=e:f,g');
accept('shell', '$(reboot)', '`id`', '; rm -rf ~', '&& shutdown -h now', '| tee evil', '$HOME', '${IFS}x', '~root', '%s%s%n');
// virsh would read these as options if they were not passed as --name=…/--snapshotname=….
accept('looks like an option', '--x', '-x', '-', '--', '--domain=..', '--domain=other-vm', '--name=evil', '--snapshotname=evil', '--help', '--disk-only', '-c qemu+ssh:root@evil');
accept('quotes', "'", '"', "''", '"quoted"', "it's", 'a"b\'c', 'say "hi"');
accept('XML special', '<&>', '<', '&', '&amp;', '&lt;tag&gt;', '<snapshot><name>x', ']]>', '<![CDATA[x]]>', '\'"<>&');
// virsh looks a domain up as an ID first; a snapshot named like a qcow2 snapshot ID must still be itself.
accept('a number', '5', '0', '1', '-1', '007', '4294967296');
accept('spaces inside', 'a b', 'a  b', 'a b c d e', 'x - y', 'a\u00a0b');
accept(
  'unicode: right-to-left scripts, emoji, other scripts',
  'גיבוי',
  'نسخة-احتياطية',
  'پشتیبان',
  'release-גרסה-2',
  '📸',
  '🔥-prod',
  '👩‍💻',
  '❤️',
  '🇺🇦',
  'e\u0301te\u0301',
  'ünïcødé-快照',
  'снимок',
  '𝕊𝕟𝕒𝕡',
);
accept('JavaScript and chat specials', '__proto__', 'constructor', 'null', '@everyone', '<@123456789012345678>', 'C:\\Windows', 'a..b');
// libvirt keeps a snapshot's metadata in NAME.xml, written as NAME.xml.new first: 255 - 8 = 247 bytes of name.
accept('at the length limit: 128 characters, or 247 UTF-8 bytes', 'x'.repeat(128), 'a-'.repeat(64), 'é'.repeat(123), `a${'é'.repeat(123)}`, '快'.repeat(82));

refuse('empty or blank', '', ' ', '   ');
refuse('leading or trailing blanks', ' lead', 'trail ', ' both ', '\u00a0nbsp-lead');
refuse('control characters', 'a\tb', 'a\nb', 'a\rb', 'a\u0000b', 'a\u001bb', 'a\u007fb', 'a\u0085b', '\u0007bell');
refuse('slash', '/', 'a/b', '../x', '/etc/passwd');
refuse('dot names', '.', '..');
refuse('too long', 'x'.repeat(129), '快'.repeat(129));
refuse(
  'hidden or direction-changing characters',
  'a\u200bb',
  'a\u200cb',
  'a\u200db',
  '\ufeffa',
  'a\u2060b',
  'a\u00adb',
  'exe.\u202etxt',
  'a\u200fb',
  'a\u200eb',
  'a\u2066b\u2069',
  'a\u061cb',
  'a\u2028b',
  'a\u2029b',
  'a\u3164b',
  'a\u{e0041}b',
  'a\u034fb',
  'a\u180eb',
);
// libvirt refuses these itself ("invalid snapshot name: name can't start with '.'"), or
// cannot store their metadata ("unable to save metadata": NAME.xml.new is more than 255
// bytes, after qemu-img made the internal snapshot in the image): snapbot must refuse them
// before virsh is asked, not after.
refuse("libvirt: name can't start with '.'", '.hidden', '...', '..a');
refuse('libvirt: more than 247 UTF-8 bytes, within 128 characters', `ab${'é'.repeat(123)}`, 'é'.repeat(124), '快'.repeat(83), '快'.repeat(128), '📸'.repeat(64), 'é'.repeat(128));

const accepted = names.filter((entry) => entry.expect === 'accepted');
const refused = names.filter((entry) => entry.expect === 'refused');
const abbreviate = (name: string) => (name.length > 24 ? `${name.slice(0, 24)}…(${name.length} chars, ${utf8Bytes(name)} bytes)` : name);
const show = (entry: HostileName) => `${JSON.stringify(entry.name.length > 40 ? `${entry.name.slice(0, 40)}…(${entry.name.length} chars, ${utf8Bytes(entry.name)} bytes)` : entry.name)} (${entry.why})`;

// ─── the world ───────────────────────────────────────────────────────────────────────────

const HOST_ID = 'e2e-names';
const TIMEOUT_MS = 300_000;
let redis: TestRedis;
let prefix: string;
let worker: SpawnedProcess;
let core: SnapbotCore;
/** The VMs the accepted names are dealt out over; the first one also takes the refused names. */
const VM_COUNT = 4;
const domains: TinyDomain[] = [];
let shimDir: string;
let callLog: string;

/**
 * Every virsh command the worker ran, in order, as argv without the program. A process
 * given a command line of several commands (worker/hypervisor/virsh-script.ts) counts as
 * one argv per command, read back with virsh's own parsing rules (tools/vsh.c).
 */
function virshCalls(): string[][] {
  return readFileSync(callLog, 'utf8')
    .split('\u001e')
    .filter((record) => record !== '')
    .map((record) => record.split('\u001f').slice(0, -1))
    .flatMap((argv) => {
      const options = argv.filter((arg) => arg.startsWith('--connect='));
      const rest = argv.slice(options.length);
      if (rest.length !== 1) return [argv];
      return splitCommandString(rest[0]!)
        .filter(([command]) => command !== 'echo')
        .map((command) => [...options, ...command]);
    });
}
const elementsNaming = (name: string) => [`--name=${name}`, `--snapshotname=${name}`];
const callsNaming = (calls: string[][], name: string) => calls.filter((argv) => argv.some((arg) => elementsNaming(name).includes(arg)));

/** The snapshots libvirt holds for the domain, and the internal ones in its qcow2 (what qemu-img sees). */
function libvirtNames(domain: TinyDomain): string[] {
  const listed = virshRaw(['snapshot-list', `--domain=${domain.uuid}`, '--name']);
  if (listed.code !== 0) throw new Error(`virsh snapshot-list failed: ${listed.stderr}`);
  return listed.stdout.split('\n').filter((line) => line !== '');
}
function qcow2Names(domain: TinyDomain): string[] {
  const info = spawnSync('qemu-img', ['info', '-U', '--output=json', domain.diskPath], { encoding: 'utf8' });
  if (info.status !== 0) throw new Error(`qemu-img info failed: ${info.stderr}`);
  return ((JSON.parse(info.stdout) as { snapshots?: Array<{ name: string }> }).snapshots ?? []).map((snapshot) => snapshot.name);
}

const codeOf = (error: unknown) => (error instanceof SnapbotError ? error.code : `not a SnapbotError: ${String(error)}`);
const sorted = (list: string[]) => [...list].sort();

beforeAll(async () => {
  await ensureLibvirt();
  for (let index = 0; index < VM_COUNT; index += 1) domains.push(await createTinyDomain(`snapbot-e2e-names-${process.pid}-${index}`, { start: false }));
  redis = await startTestRedis();
  prefix = uniquePrefix('e2e-names');
  shimDir = mkdtempSync(join(tmpdir(), 'snapbot-virsh-shim-'));
  callLog = join(shimDir, 'calls.log');
  writeFileSync(callLog, '');
  const realVirsh = spawnSync('sh', ['-c', 'command -v virsh'], { encoding: 'utf8' }).stdout.trim();
  if (!realVirsh) throw new Error('no virsh on PATH');
  // One record per call, written with one printf (one write on an O_APPEND file): argv
  // elements end with US (0x1f), records with RS (0x1e); neither can be in a name that
  // reaches virsh (control characters are refused), and argv cannot hold NUL.
  const shim = join(shimDir, 'virsh');
  writeFileSync(
    shim,
    ['#!/bin/sh', "us=$(printf '\\037')", "record=''", 'for arg in "$@"; do record="$record$arg$us"; done', `printf '%s\\036' "$record" >> '${callLog}'`, `exec '${realVirsh}' "$@"`, ''].join('\n'),
    { mode: 0o755 },
  );
  // The inventory is read once at start (it carries the domains); the test's own calls are the ones that count.
  worker = spawnNode(WORKER_MAIN, { REDIS_URL: redis.url, SNAPBOT_PREFIX: prefix, HOST_ID, LIBVIRT_URI: LIBVIRT_E2E_URI, VIRSH_PATH: shim, HEARTBEAT_INTERVAL_MS: '1000', INVENTORY_INTERVAL_MS: '600000', LOG_LEVEL: 'info' });
  await worker.waitFor('worker ready', 60_000);
  // No approvals: direct deletes; no actor is passed, so no policy rule is asked (this file is about names).
  const policy = policySchema.parse({ rules: [], approvals: [] });
  core = await SnapbotCore.connect({ signer: testAuthority(), redisUrl: redis.url, prefix, logger: createLogger('e2e-names', 'silent'), policy });
  // The worker's first heartbeat carries the domains.
  const deadline = Date.now() + 60_000;
  for (const domain of domains) {
    for (;;) {
      try {
        await listSnapshots(core, { vm: domain.name, requestedBy: 'e2e' }, { timeoutMs: TIMEOUT_MS });
        break;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
    }
  }
}, 600_000);

afterAll(async () => {
  await core?.close();
  await worker?.stop();
  await redis?.stop();
  for (const domain of domains) await destroyTinyDomain(domain.uuid);
  if (shimDir) rmSync(shimDir, { recursive: true, force: true });
});

describe(`${names.length} hostile snapshot names on real libvirt + QEMU`, () => {
  it('has the names the issue lists, and at least 100 of them', () => {
    expect(names.length).toBeGreaterThanOrEqual(100);
    expect(new Set(names.map((entry) => entry.name)).size).toBe(names.length);
    const all = names.map((entry) => entry.name);
    for (const must of ['--x', '-x', '--domain=..', '5', 'a b', '<&>', "'", '"', '.', '..', '/', 'x'.repeat(128)]) expect(all).toContain(must);
  });

  it(`creates, lists, shows and deletes each of ${accepted.length} accepted names as itself, one argv element each`, async () => {
    const failures: string[] = [];
    const options = { timeoutMs: TIMEOUT_MS };
    const timings: string[] = [];
    let phaseStart = Date.now();
    const lap = (what: string) => {
      timings.push(`${what} ${((Date.now() - phaseStart) / 1000).toFixed(1)} s`);
      phaseStart = Date.now();
    };
    // Dealt out over the VMs; each VM's names one after the other (its jobs are serialized anyway), the VMs side by side.
    const batches = domains.map((domain, index) => ({ domain, entries: accepted.filter((_, position) => position % domains.length === index), made: [] as string[] }));
    const eachVm = (work: (batch: (typeof batches)[number]) => Promise<void>) => Promise.all(batches.map(work));

    await eachVm(async ({ domain, entries, made }) => {
      for (const entry of entries) {
        try {
          const result = await createSnapshot(core, { vm: domain.name, requestedBy: 'e2e', name: entry.name, mode: 'full' }, options);
          if (result.snapshot.name !== entry.name) failures.push(`create ${show(entry)}: came back as ${JSON.stringify(result.snapshot.name)}`);
          else made.push(entry.name);
        } catch (error) {
          failures.push(`create ${show(entry)}: ${codeOf(error)}: ${(error as Error).message}`);
        }
      }
    });
    lap(`${accepted.length} creates`);
    const calls = virshCalls();
    for (const entry of accepted) {
      const creates = callsNaming(calls, entry.name).filter((argv) => argv.includes('snapshot-create-as'));
      if (creates.length !== 1) failures.push(`create ${show(entry)}: ${creates.length} snapshot-create-as calls with --name=<it> as one element`);
    }

    // Listed exactly as made, each once: by snapbot, by libvirt, and in the qcow2 image (internal snapshots).
    await eachVm(async ({ domain, made }) => {
      const listed = (await listSnapshots(core, { vm: domain.name, requestedBy: 'e2e' }, options)).snapshots.map((snapshot) => snapshot.name);
      const differences = (where: string, found: string[]) => {
        const extra = found.filter((name) => !made.includes(name) || found.indexOf(name) !== found.lastIndexOf(name));
        const missing = made.filter((name) => !found.includes(name));
        if (extra.length > 0 || missing.length > 0) failures.push(`${where} of ${domain.name}: extra ${JSON.stringify(extra.map(abbreviate))}, missing ${JSON.stringify(missing.map(abbreviate))}`);
      };
      differences('snapbot list', listed);
      differences('virsh snapshot-list', libvirtNames(domain));
      differences('qemu-img (the image)', qcow2Names(domain));
    });
    lap('lists');

    await eachVm(async ({ domain, entries }) => {
      for (const entry of entries) {
        try {
          const info = await snapshotInfo(core, { vm: domain.name, requestedBy: 'e2e', name: entry.name }, options);
          if (info.snapshot.name !== entry.name) failures.push(`info ${show(entry)}: came back as ${JSON.stringify(info.snapshot.name)}`);
        } catch (error) {
          failures.push(`info ${show(entry)}: ${codeOf(error)}: ${(error as Error).message}`);
        }
      }
    });
    lap(`${accepted.length} infos`);
    // Newest first: each delete takes a leaf, so libvirt has no children to re-parent.
    await eachVm(async ({ domain, entries }) => {
      for (const entry of [...entries].reverse()) {
        try {
          const deleted = await deleteSnapshot(core, { vm: domain.name, requestedBy: 'e2e', name: entry.name }, options);
          if (deleted.deleted.name !== entry.name) failures.push(`delete ${show(entry)}: deleted ${JSON.stringify(deleted.deleted.name)}`);
        } catch (error) {
          failures.push(`delete ${show(entry)}: ${codeOf(error)}: ${(error as Error).message}`);
        }
      }
    });
    lap(`${accepted.length} deletes`);
    console.log(`hostile names, ${accepted.length} accepted over ${domains.length} VMs: ${timings.join(', ')}; ${virshCalls().length} virsh calls so far`);
    for (const domain of domains) {
      const left = (await listSnapshots(core, { vm: domain.name, requestedBy: 'e2e' }, options)).snapshots.map((snapshot) => snapshot.name);
      if (left.length > 0) failures.push(`snapbot still lists ${JSON.stringify(left.map(abbreviate))} on ${domain.name} after the deletes`);
      if (libvirtNames(domain).length > 0) failures.push(`libvirt still holds ${JSON.stringify(libvirtNames(domain).map(abbreviate))} on ${domain.name} after the deletes`);
      if (qcow2Names(domain).length > 0) failures.push(`the image of ${domain.name} still holds internal snapshots ${JSON.stringify(qcow2Names(domain).map(abbreviate))} after the deletes`);
    }
    expect(failures).toEqual([]);
  }, 900_000);

  it(`refuses each of ${refused.length} names with VALIDATION before anything is queued, and virsh never sees one`, async () => {
    const failures: string[] = [];
    const domain = domains[0]!;
    const vm = domain.name;
    const queue = core.queueFor(HOST_ID);
    const jobsBefore = Object.values(await queue.getJobCounts()).reduce((sum, count) => sum + count, 0);
    for (const entry of refused) {
      for (const [what, attempt] of [
        ['create', () => createSnapshot(core, { vm, requestedBy: 'e2e', name: entry.name, mode: 'full' }, { timeoutMs: TIMEOUT_MS })],
        ['info', () => snapshotInfo(core, { vm, requestedBy: 'e2e', name: entry.name }, { timeoutMs: TIMEOUT_MS })],
        ['delete', () => deleteSnapshot(core, { vm, requestedBy: 'e2e', name: entry.name }, { timeoutMs: TIMEOUT_MS })],
      ] as const) {
        try {
          await attempt();
          failures.push(`${what} ${show(entry)}: succeeded`);
        } catch (error) {
          if (codeOf(error) !== 'VALIDATION') failures.push(`${what} ${show(entry)}: ${codeOf(error)} instead of VALIDATION: ${(error as Error).message}`);
        }
      }
    }
    const jobsAfterCore = Object.values(await queue.getJobCounts()).reduce((sum, count) => sum + count, 0);
    // Nothing queued by core for them … (at most the jobs of names core let through, each listed above)
    const queuedByCore = jobsAfterCore - jobsBefore;

    // … and a signed job carrying one, written straight to the queue, is refused by the worker's own parse.
    const connection = { url: redis.url, maxRetriesPerRequest: null };
    const writer = new Queue(hostQueueName(HOST_ID), { connection, prefix });
    try {
      const ids = refused.map((_, index) => `hostile-${index}`);
      for (const [index, entry] of refused.entries()) {
        const job = signJob(testAuthority(), ids[index]!, { kind: 'create', host: HOST_ID, vm, uuid: domain.uuid, requestedBy: 'e2e', name: entry.name, mode: 'full' } as SnapshotJob);
        await writer.add('create', job, { jobId: ids[index], attempts: 1 });
      }
      const finished = async () => Promise.all(ids.map(async (id) => (await Job.fromId(writer, id))?.finishedOn !== undefined));
      const deadline = Date.now() + TIMEOUT_MS;
      while ((await finished()).includes(false) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 250));
      for (const [index, entry] of refused.entries()) {
        const job = await Job.fromId(writer, ids[index]!);
        const outcome = !job ? 'vanished' : job.finishedOn === undefined ? `not finished (${await job.getState()})` : (job.failedReason ?? 'completed');
        if (!outcome.startsWith('VALIDATION')) failures.push(`signed job ${show(entry)}: ${outcome.slice(0, 200)}`);
      }
    } finally {
      await writer.close();
    }

    const calls = virshCalls();
    for (const entry of refused) {
      const seen = callsNaming(calls, entry.name);
      if (seen.length > 0) failures.push(`virsh saw ${show(entry)} ${seen.length} time(s): ${seen.map((argv) => argv.find((arg) => !arg.startsWith('-'))).join(', ')}`);
    }
    const left = libvirtNames(domain);
    const inImage = qcow2Names(domain);
    if (left.length > 0) failures.push(`libvirt holds snapshots after the refusals: ${JSON.stringify(left.map(abbreviate))}`);
    if (inImage.length > 0) failures.push(`the qcow2 image holds internal snapshots after the refusals: ${JSON.stringify(inImage.map(abbreviate))}`);
    if (queuedByCore > 0) failures.push(`core queued ${queuedByCore} job(s) for refused names`);
    expect(failures).toEqual([]);
  }, 600_000);
});
