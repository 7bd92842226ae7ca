import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execa } from 'execa';
import { createLogger } from '../../../../shared/logger.js';
import { VirshHypervisor } from '../../../../worker/hypervisor/virsh.js';
import { createVirshRunner, virshEnvironment } from '../../../../worker/hypervisor/virsh-runner.js';
import {
  MAX_SCRIPT_BYTES,
  chunkVirshCommands,
  composeVirshScript,
  quoteVirshToken,
  splitScriptOutput,
} from '../../../../worker/hypervisor/virsh-script.js';
import { FakeVirshHost } from '../../../fixtures/fake-virsh-host.js';
import { LITERAL_NAMES } from '../../../fixtures/names-table.js';

const fixture = (file: string) => readFileSync(new URL(`../../../fixtures/virsh-script/${file}`, import.meta.url), 'utf8');

describe('virsh scripts: splitting real output', () => {
  it('cuts what virsh 9.0 printed into each command’s own stdout and stderr', () => {
    const parts = splitScriptOutput(fixture('script-three-commands.stdout'), fixture('script-three-commands.stderr'), 'm', 3);
    expect(parts).not.toBeNull();
    expect(parts![0]).toEqual({ stdout: '\n', stderr: "error: failed to get domain 'nope'\n" });
    expect(parts![1]).toEqual({ stdout: 'shut off\n\n', stderr: '' });
    expect(parts![2]!.stdout).toMatch(/^ Name {3}Creation Time {15}State\n-+\n t1 .*\n(.*\n){19}\n$/);
    expect(parts![2]!.stderr).toBe('');
  });

  it('refuses output whose marks are missing or out of order (virsh stopped, or no connection)', () => {
    const stdout = fixture('script-three-commands.stdout');
    const stderr = fixture('script-three-commands.stderr');
    expect(splitScriptOutput('', "error: failed to connect to the hypervisor\n", 'm', 3)).toBeNull();
    expect(splitScriptOutput(stdout.replace('m-1\n', 'x-1\n'), stderr, 'm', 3)).toBeNull();
    expect(splitScriptOutput(stdout, stderr.replace('error: m-2\n', ''), 'm', 3)).toBeNull();
    expect(splitScriptOutput(stdout, stderr, 'other-mark', 3)).toBeNull();
    // A mark printed inside a command's output only counts at the start of a line.
    expect(splitScriptOutput('m-0\n\nsee m-1\n\n', '', 'm', 2)).toBeNull();
  });

  it('keeps ten and more commands apart (m-1 is not m-10)', () => {
    const commands = Array.from({ length: 12 }, (_, index) => index);
    const stdout = commands.map((index) => `m-${index}\n\nout ${index}\n\n`).join('');
    const stderr = commands.map((index) => `error: m-${index}\n${index % 2 ? `error: bad ${index}\n` : ''}`).join('');
    const parts = splitScriptOutput(stdout, stderr, 'm', 12)!;
    expect(parts.map((part) => part.stdout)).toEqual(commands.map((index) => `out ${index}\n\n`));
    expect(parts.map((part) => part.stderr)).toEqual(commands.map((index) => (index % 2 ? `error: bad ${index}\n` : '')));
  });
});

describe('virsh scripts: quoting and chunking', () => {
  it('quotes like POSIX sh single quotes, and only what needs it', () => {
    expect(quoteVirshToken("it's")).toBe(`'it'\\''s'`);
    expect(quoteVirshToken('')).toBe("''");
    expect(quoteVirshToken('#x')).toBe("'#x'");
    expect(quoteVirshToken('a;b')).toBe("'a;b'");
    expect(composeVirshScript([['domstate', '--domain=x']], 'm')).toBe('echo m-0\necho --err m-0\ndomstate --domain=x');
  });

  it('splits long runs under the argument size limit, in order, never an empty chunk', () => {
    const commands = Array.from({ length: 6000 }, (_, index) => ['snapshot-list', `--domain=00000000-0000-4000-8000-${String(index).padStart(12, '0')}`]);
    const chunks = chunkVirshCommands(commands, 'm01234567');
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.flat()).toEqual(commands);
    for (const chunk of chunks) expect(Buffer.byteLength(composeVirshScript(chunk, 'm01234567'))).toBeLessThan(MAX_SCRIPT_BYTES);
    const huge = [['echo', 'x'.repeat(MAX_SCRIPT_BYTES)]];
    expect(chunkVirshCommands(huge, 'm')).toEqual([huge]);
  });
});

describe('virsh scripts through the fake virsh (its parser follows vsh.c)', () => {
  let host: FakeVirshHost;
  beforeAll(async () => {
    host = await FakeVirshHost.create();
  });
  afterAll(async () => {
    await host.dispose();
  });

  const hostile = [...LITERAL_NAMES, 'two\nlines', 'semi;colon', '# not a comment', 'back\\slash', '"double"', "'", "''", '\\\n', ' ', ''];

  it('reads every token back exactly as it was', async () => {
    // `--` first: virsh reads an option-looking token (`--help`) after a command as an option.
    const commands = hostile.map((token) => ['echo', '--', token]);
    const result = await execa(host.path, ['--connect=qemu:///system', composeVirshScript(commands, 'm')], { env: host.env, reject: false, stripFinalNewline: false });
    expect(result.exitCode).toBe(0);
    const parts = splitScriptOutput(String(result.stdout), String(result.stderr), 'm', commands.length);
    expect(parts?.map((part) => part.stdout)).toEqual(hostile.map((token) => `${token}\n`));
  });

  it('reads a whole host in two virsh processes, whatever the number of VMs', async () => {
    const names = Array.from({ length: 60 }, (_, index) => `vm-${index}`);
    const uuids = names.map((name) => host.addDomain({ name }).uuid);
    const hypervisor = new VirshHypervisor({
      virshPath: host.path,
      uri: 'qemu:///system',
      timeoutMs: 60_000,
      queryTimeoutMs: 60_000,
      logger: createLogger('test', 'silent'),
      runner: createVirshRunner(host.path, { ...virshEnvironment(), ...host.env }),
    });
    host.clearCalls();
    const made = await hypervisor.createSnapshot(uuids[0]!, { name: 'vm-0-s1', description: 'x', mode: 'full' });
    expect(made).toMatchObject({ name: 'vm-0-s1', current: true, location: 'internal' });
    await hypervisor.createSnapshot(uuids[0]!, { name: 'vm-0-s2', description: "it's\n[snapbot job 1]", mode: 'disk-only' });
    expect(host.processes()).toHaveLength(2);
    host.clearCalls();
    const inventory = await hypervisor.readInventory();
    expect(host.processes()).toHaveLength(2);
    expect(inventory.map((vm) => vm.name).sort()).toEqual([...names].sort());
    const first = inventory.find((vm) => vm.name === 'vm-0')!;
    expect(first.state).toBe('running');
    expect(first.snapshots.map(({ name, location }) => [name, location])).toEqual([
      ['vm-0-s1', 'internal'],
      ['vm-0-s2', 'external'],
    ]);
  });
});
