import { existsSync, readFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { execa, type Options } from 'execa';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';

/**
 * The fake virsh must look like virsh 9.0 to the worker (same argv grammar, same bytes
 * on stdout and stderr, same exit codes) and must inject the faults tests ask for.
 * Expected texts come from shared/notes/libvirt.md and from virsh 9.0 itself.
 */

let host: FakeVirshHost;

beforeEach(async () => {
  host = await FakeVirshHost.create();
});

afterEach(async () => {
  await host.dispose();
});

async function virsh(args: string[], options: Options = {}) {
  const result = await execa(host.path, args, {
    env: host.env,
    reject: false,
    stripFinalNewline: false,
    ...options,
  });
  return {
    exitCode: result.exitCode,
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    signal: result.signal,
    timedOut: result.timedOut,
    durationMs: result.durationMs,
  };
}

const URI = '--connect=qemu:///system';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('fake virsh: queries', () => {
  it('prints the configured versions, the daemon one only with --daemon', async () => {
    const custom = await FakeVirshHost.create({ libvirtVersion: '11.3.0', qemuVersion: '10.0.2' });
    try {
      const plain = await execa(custom.path, [URI, 'version'], { env: custom.env, stripFinalNewline: false });
      expect(plain.stdout).toBe(
        'Compiled against library: libvirt 11.3.0\n' +
          'Using library: libvirt 11.3.0\n' +
          'Using API: QEMU 11.3.0\n' +
          'Running hypervisor: QEMU 10.0.2\n\n',
      );
      const daemon = await execa(custom.path, [URI, 'version', '--daemon'], { env: custom.env });
      expect(daemon.stdout).toContain('Running against daemon: 11.3.0');
    } finally {
      await custom.dispose();
    }
    expect((await virsh(['version', '--daemon'])).stdout).toContain('Running against daemon: 9.0.0\n');
  });

  it('lists running domains by id first, then shut-off ones by name', async () => {
    const off = host.addDomain({ name: 'b-off', state: 'shut off' });
    const web = host.addDomain({ name: 'web' });
    const a = host.addDomain({ name: 'a-off', state: 'shut off' });
    const db = host.addDomain({ name: 'db', state: 'paused' });

    expect((await virsh([URI, 'list', '--all', '--uuid'])).stdout).toBe(`${web.uuid}\n${db.uuid}\n${a.uuid}\n${off.uuid}\n\n`);
    expect((await virsh([URI, 'list', '--all', '--name'])).stdout).toBe('web\ndb\na-off\nb-off\n\n');
    expect((await virsh(['list', '--all'])).stdout).toBe(
      ' Id   Name    State\n' +
        '------------------------\n' +
        ' 1    web     running\n' +
        ' 2    db      paused\n' +
        ' -    a-off   shut off\n' +
        ' -    b-off   shut off\n\n',
    );
    expect((await virsh(['-q', 'list'])).stdout).toBe(' 1   web   running\n 2   db    paused\n');
  });

  it('answers domname, domuuid and domstate by UUID', async () => {
    const vm = host.addDomain({ name: 'vm1', state: 'shut off' });
    expect(await virsh([URI, 'domname', `--domain=${vm.uuid}`])).toMatchObject({ exitCode: 0, stdout: 'vm1\n\n', stderr: '' });
    expect((await virsh([URI, 'domuuid', '--domain=vm1'])).stdout).toBe(`${vm.uuid}\n\n`);
    expect((await virsh([URI, 'domstate', `--domain=${vm.uuid}`])).stdout).toBe('shut off\n\n');
    expect((await virsh([URI, 'domstate', `--domain=${vm.uuid}`, '--reason'])).stdout).toBe('shut off (unknown)\n\n');
  });

  it('looks a domain up by id before UUID and name, like virsh', async () => {
    const first = host.addDomain({ name: 'first' });
    host.addDomain({ name: '1', state: 'shut off' });
    expect((await virsh(['domname', '--domain=1'])).stdout).toBe('first\n\n');
    expect((await virsh(['domuuid', '--domain=1'])).stdout).toBe(`${first.uuid}\n\n`);
    // A UUID without dashes is not 36 characters long, so virsh tries it as a name only.
    expect((await virsh(['domstate', `--domain=${first.uuid.replaceAll('-', '')}`])).exitCode).toBe(1);
  });

  it('has domname find domains by id or UUID only, and domuuid by id or name only', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    expect(await virsh(['domname', '--domain=vm1'])).toMatchObject({ exitCode: 1, stderr: "error: failed to get domain 'vm1'\n" });
    expect(await virsh(['domuuid', `--domain=${vm.uuid}`])).toMatchObject({ exitCode: 1, stderr: `error: failed to get domain '${vm.uuid}'\n` });
  });

  it('fails on an unknown domain with virsh text on stderr and a blank line on stdout', async () => {
    expect(await virsh([URI, 'domstate', '--domain=nosuch'])).toMatchObject({
      exitCode: 1,
      stdout: '\n',
      stderr: "error: failed to get domain 'nosuch'\n",
    });
  });
});

describe('fake virsh: snapshots', () => {
  it('creates a disk-only snapshot as an external one', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    const created = await virsh([URI, 'snapshot-create-as', `--domain=${vm.uuid}`, '--name=s1', '--description=job:42', '--disk-only', '--atomic']);
    expect(created).toMatchObject({ exitCode: 0, stdout: 'Domain snapshot s1 created\n', stderr: '' });

    const [snapshot] = host.domain(vm.uuid).snapshots;
    expect(snapshot).toMatchObject({ name: 's1', description: 'job:42', location: 'external', memory: false, state: 'disk-snapshot', parent: null });
    expect(host.domain('vm1').current).toBe('s1');

    const info = await virsh(['snapshot-info', `--domain=${vm.uuid}`, '--snapshotname=s1']);
    expect(info.stdout).toBe(
      'Name:           s1\n' +
        'Domain:         vm1\n' +
        'Current:        yes\n' +
        'State:          disk-snapshot\n' +
        'Location:       external\n' +
        'Parent:         -\n' +
        'Children:       0\n' +
        'Descendants:    0\n' +
        'Metadata:       yes\n\n',
    );
  });

  it('creates internal snapshots with memory of running domains and without of shut-off ones', async () => {
    const up = host.addDomain({ name: 'up' });
    const down = host.addDomain({ name: 'down', state: 'shut off' });
    await virsh(['snapshot-create-as', `--domain=${up.uuid}`, '--name=full']);
    await virsh(['snapshot-create-as', `--domain=${down.uuid}`, '--name=cold']);
    expect(host.domain('up').snapshots[0]).toMatchObject({ location: 'internal', memory: true, state: 'running' });
    expect(host.domain('down').snapshots[0]).toMatchObject({ location: 'internal', memory: false, state: 'shutoff' });
    expect((await virsh(['snapshot-info', '--domain=down', '--current'])).stdout).toContain('State:          shutoff\n');
  });

  it('lists snapshot names sorted case-insensitively then a blank line, and a table with parents', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    for (const name of ['b', 'A', 'C']) await virsh(['snapshot-create-as', `--domain=${vm.uuid}`, `--name=${name}`]);
    expect((await virsh([URI, 'snapshot-list', `--domain=${vm.uuid}`, '--name'])).stdout).toBe('A\nb\nC\n\n');
    expect((await virsh(['-q', 'snapshot-list', `--domain=${vm.uuid}`, '--name'])).stdout).toBe('A\nb\nC\n');

    const table = (await virsh(['snapshot-list', '--domain=vm1', '--parent'])).stdout.split('\n');
    expect(table[0]).toBe(' Name   Creation Time               State     Parent');
    expect(table[1]).toBe('-'.repeat(54));
    expect(table[2]).toMatch(/^ A {6}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4} {3}running {3}b$/);
    expect(table[3]).toMatch(/^ b .* running {3}$/);
    expect(table.slice(5)).toEqual(['', '']);

    expect((await virsh(['snapshot-list', '--domain=vm1', '--tree'])).stdout).toBe('b\n  |\n  +- A\n      |\n      +- C\n        \n\n');
  });

  it('dumps snapshot XML the way libvirt structures it', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=base']);
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=over', "--description=a <b> & 'c'", '--disk-only']);
    const { stdout, exitCode } = await virsh([URI, 'snapshot-dumpxml', `--domain=${vm.uuid}`, '--snapshotname=over']);
    expect(exitCode).toBe(0);
    const created = host.domain('vm1').snapshots[1]!.creationTime;
    expect(stdout).toMatch(
      new RegExp(
        '^<domainsnapshot>\\n' +
          '  <name>over</name>\\n' +
          '  <description>a &lt;b&gt; &amp; &apos;c&apos;</description>\\n' +
          '  <state>disk-snapshot</state>\\n' +
          '  <parent>\\n    <name>base</name>\\n  </parent>\\n' +
          `  <creationTime>${created}</creationTime>\\n` +
          "  <memory snapshot='no'/>\\n" +
          '  <disks>\\n' +
          "    <disk name='vda' snapshot='external' type='file'>\\n" +
          "      <driver type='qcow2'/>\\n" +
          "      <source file='/var/lib/libvirt/images/vm1.over'/>\\n" +
          '    </disk>\\n' +
          '  </disks>\\n' +
          "  <domain type='kvm'>\\n",
      ),
    );
    expect(stdout).toContain(`    <uuid>${vm.uuid}</uuid>\n`);
    expect(stdout.endsWith('</domainsnapshot>\n\n')).toBe(true);

    const internal = (await virsh(['snapshot-dumpxml', '--domain=vm1', '--snapshotname=base'])).stdout;
    expect(internal).toContain("  <memory snapshot='internal'/>\n  <disks>\n    <disk name='vda' snapshot='internal'/>\n  </disks>\n");
  });

  it('reports the current snapshot, or that there is none', async () => {
    host.addDomain({ name: 'vm1' });
    expect(await virsh(['snapshot-current', '--domain=vm1', '--name'])).toMatchObject({
      exitCode: 1,
      stderr: "error: domain 'vm1' has no current snapshot\n",
    });
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=one']);
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=two']);
    expect((await virsh(['snapshot-current', '--domain=vm1', '--name'])).stdout).toBe('two\n');
    // virsh prints the name without a newline of its own: -q drops the only one.
    expect((await virsh(['-q', 'snapshot-current', '--domain=vm1', '--name'])).stdout).toBe('two');
  });

  it('reverts to an internal snapshot: domain state and current snapshot follow it', async () => {
    const vm = host.addDomain({ name: 'vm1', state: 'shut off' });
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=cold']);
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=later']);
    const reverted = await virsh([URI, 'snapshot-revert', `--domain=${vm.uuid}`, '--snapshotname=cold']);
    expect(reverted).toMatchObject({ exitCode: 0, stdout: 'Domain snapshot cold reverted\n\n', stderr: '' });
    expect(host.domain('vm1')).toMatchObject({ state: 'shut off', current: 'cold' });
    expect((await virsh(['domstate', '--domain=vm1', '--reason'])).stdout).toBe('shut off (from snapshot)\n\n');

    const running = host.addDomain({ name: 'vm2' });
    await virsh(['snapshot-create-as', `--domain=${running.uuid}`, '--name=hot']);
    await virsh(['snapshot-revert', `--domain=${running.uuid}`, '--snapshotname=hot']);
    expect((await virsh(['domstate', `--domain=${running.uuid}`, '--reason'])).stdout).toBe('running (from snapshot)\n\n');
  });

  it('refuses to revert an external snapshot before libvirt 9.9, and does it from 9.9 on', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    await virsh(['snapshot-create-as', `--domain=${vm.uuid}`, '--name=ext', '--disk-only', '--atomic']);
    expect(await virsh(['snapshot-revert', `--domain=${vm.uuid}`, '--snapshotname=ext'])).toMatchObject({
      exitCode: 1,
      stdout: '\n',
      stderr: 'error: Failed to revert snapshot ext\nerror: unsupported configuration: revert to external snapshot not supported yet\n',
    });

    const newer = await FakeVirshHost.create({ libvirtVersion: '9.9.0' });
    try {
      const other = newer.addDomain({ name: 'vm1' });
      const env = newer.env;
      await execa(newer.path, ['snapshot-create-as', `--domain=${other.uuid}`, '--name=ext', '--disk-only'], { env });
      const result = await execa(newer.path, ['snapshot-revert', `--domain=${other.uuid}`, '--snapshotname=ext'], { env });
      expect(result.exitCode).toBe(0);
      expect(newer.domain('vm1').current).toBe('ext');
    } finally {
      await newer.dispose();
    }
  });

  it('deletes a snapshot and hands its children to its parent', async () => {
    host.addDomain({ name: 'vm1' });
    for (const name of ['a', 'b', 'c']) await virsh(['snapshot-create-as', '--domain=vm1', `--name=${name}`]);
    expect(await virsh([URI, 'snapshot-delete', '--domain=vm1', '--snapshotname=b'])).toMatchObject({
      exitCode: 0,
      stdout: 'Domain snapshot b deleted\n\n',
    });
    const domain = host.domain('vm1');
    expect(domain.snapshots.map((snapshot) => [snapshot.name, snapshot.parent])).toEqual([
      ['a', null],
      ['c', 'a'],
    ]);
    await virsh(['snapshot-delete', '--domain=vm1', '--snapshotname=c']);
    expect(host.domain('vm1').current).toBe('a');
    expect(await virsh(['snapshot-delete', '--domain=vm1', '--snapshotname=c'])).toMatchObject({
      exitCode: 1,
      stderr: "error: Domain snapshot not found: no domain snapshot with matching name 'c'\n",
    });
  });

  it('refuses to delete an external snapshot that is off the current disk chain', async () => {
    host.addDomain({ name: 'vm1' });
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=before']);
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=ext', '--disk-only']);
    // Reverting to the older internal snapshot puts the domain back on the base image.
    await virsh(['snapshot-revert', '--domain=vm1', '--snapshotname=before']);
    const result = await virsh(['snapshot-delete', '--domain=vm1', '--snapshotname=ext']);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('error: invalid argument: could not find base disk source in disk source chain\n');
    expect(host.domain('vm1').snapshots.map((snapshot) => snapshot.name)).toEqual(['before', 'ext']);
  });

  it('deletes an external snapshot in the current chain', async () => {
    host.addDomain({ name: 'vm1' });
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=ext', '--disk-only']);
    expect((await virsh(['snapshot-delete', '--domain=vm1', '--snapshotname=ext'])).exitCode).toBe(0);
    expect(host.domain('vm1').disk.chain).toEqual(['/var/lib/libvirt/images/vm1.qcow2']);
  });

  it('applies libvirt name rules: no slash, not empty, no duplicates', async () => {
    host.addDomain({ name: 'vm1' });
    expect(await virsh(['snapshot-create-as', '--domain=vm1', '--name=a/b'])).toMatchObject({
      exitCode: 1,
      stdout: '\n',
      stderr: "error: invalid snapshot name 'a/b': name can't contain '/'\n",
    });
    expect(await virsh(['snapshot-create-as', '--domain=vm1', '--name='])).toMatchObject({
      exitCode: 1,
      stderr: "error: Failed to get option 'name': Option argument is empty\n",
    });
    await virsh(['snapshot-create-as', '--domain=vm1', '--name=dup']);
    expect(await virsh(['snapshot-create-as', '--domain=vm1', '--name=dup'])).toMatchObject({
      exitCode: 1,
      stderr: 'error: operation failed: domain moment dup already exists\n',
    });
    expect(host.domain('vm1').snapshots).toHaveLength(1);
  });
});

describe('fake virsh: argv grammar', () => {
  it('reads a positional argument that looks like an option as an option', async () => {
    host.addDomain({ name: 'vm1' });
    expect(await virsh(['domstate', '--opt'])).toMatchObject({
      exitCode: 1,
      stdout: '',
      stderr: "error: command 'domstate' doesn't support option --opt\n",
    });
  });

  it('takes the argument after a space-separated option verbatim, even when it starts with --', async () => {
    host.addDomain({ name: 'vm1' });
    // Real virsh 9.0 does this too: `--name --foo` names the snapshot "--foo".
    expect((await virsh(['snapshot-create-as', '--domain', 'vm1', '--name', '--foo'])).stdout).toBe('Domain snapshot --foo created\n');
    expect((await virsh(['snapshot-create-as', '--domain=vm1', '--name=--bar'])).stdout).toBe('Domain snapshot --bar created\n');
    expect((await virsh(['snapshot-create-as', 'vm1', '--', '--baz'])).stdout).toBe('Domain snapshot --baz created\n');
    expect(host.domain('vm1').snapshots.map((snapshot) => snapshot.name)).toEqual(['--foo', '--bar', '--baz']);
    expect(await virsh(['domstate', '--domain', '--opt'])).toMatchObject({ exitCode: 1, stderr: "error: failed to get domain '--opt'\n" });
  });

  it('reports syntax errors the way virsh does, before running anything', async () => {
    host.addDomain({ name: 'vm1' });
    const cases: Array<[string[], string]> = [
      [['domstate'], "error: command 'domstate' requires <domain> option\n"],
      [['snapshot-create-as', '--domain=vm1', '--name'], 'error: expected syntax: --name <string>\n'],
      [['domstate', 'vm1', '--reason=yes'], "error: invalid '=' after option --reason\n"],
      [['domstate', 'vm1', '--domain=vm1'], 'error: option --domain already seen\n'],
      [['domstate', 'vm1', 'extra'], "error: unexpected data 'extra'\n"],
      [['frobnicate'], "error: unknown command: 'frobnicate'\n"],
      [['--bogus', 'list'], "error: unsupported option '--bogus'. See --help.\n"],
      [['-c'], "error: option '-c'/'--connect' requires an argument\n"],
    ];
    for (const [args, stderr] of cases) {
      expect(await virsh(args), args.join(' ')).toMatchObject({ exitCode: 1, stdout: '', stderr });
    }
  });

  it('accepts the connection URI in all getopt forms and -q', async () => {
    host.addDomain({ name: 'vm1' });
    for (const prefix of [['-c', 'qemu:///system'], ['--connect', 'qemu:///system'], ['--connect=qemu:///system'], ['-cqemu:///system']]) {
      expect((await virsh([...prefix, 'domstate', 'vm1'])).stdout).toBe('running\n\n');
    }
    expect((await virsh(['-q', '-c', 'qemu:///system', 'domstate', 'vm1'])).stdout).toBe('running\n');
  });

  it('logs the exact argv of every invocation', async () => {
    host.addDomain({ name: 'vm1' });
    await virsh([URI, 'domstate', '--domain=vm1']);
    await virsh(['nonsense']);
    const calls = host.calls();
    expect(calls.map((call) => call.argv)).toEqual([[URI, 'domstate', '--domain=vm1'], ['nonsense']]);
    expect(calls[0]!.pid).toBeGreaterThan(0);
    expect(calls[0]!.at).toBeLessThanOrEqual(Date.now());
    host.clearCalls();
    expect(host.calls()).toEqual([]);
  });

  it('exits 1 with a message when FAKE_VIRSH_STATE is missing', async () => {
    const result = await execa(host.path, ['list'], { reject: false, env: { FAKE_VIRSH_STATE: '' } });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain('FAKE_VIRSH_STATE');
  });
});

describe('fake virsh: concurrency', () => {
  it('keeps all of 10 parallel creates on one domain', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    const names = Array.from({ length: 10 }, (_, index) => `p${index}`);
    const results = await Promise.all(
      names.map((name) => virsh([URI, 'snapshot-create-as', `--domain=${vm.uuid}`, `--name=${name}`, '--disk-only', '--atomic'])),
    );
    expect(results.map((result) => result.exitCode)).toEqual(names.map(() => 0));
    const domain = host.domain(vm.uuid);
    expect(domain.snapshots.map((snapshot) => snapshot.name).sort()).toEqual(names);
    // Each landed on top of the one before it: a single chain, no lost update.
    expect(domain.snapshots.filter((snapshot) => snapshot.parent === null)).toHaveLength(1);
    expect(domain.disk.chain).toHaveLength(11);
  });

  it('lets exactly one of two same-name creates win', async () => {
    host.addDomain({ name: 'vm1' });
    const results = await Promise.all([1, 2].map(() => virsh(['snapshot-create-as', '--domain=vm1', '--name=same'])));
    expect(results.map((result) => result.exitCode).sort()).toEqual([0, 1]);
    expect(results.find((result) => result.exitCode === 1)!.stderr).toBe('error: operation failed: domain moment same already exists\n');
  });
});

describe('fake virsh: faults', () => {
  it('adds latency before acting', async () => {
    host.addDomain({ name: 'vm1' });
    host.setFaults([{ match: { subcommand: 'domstate' }, latencyMs: 400 }]);
    const slow = await virsh(['domstate', '--domain=vm1']);
    expect(slow.stdout).toBe('running\n\n');
    expect(slow.durationMs).toBeGreaterThanOrEqual(400);
  });

  it('adds the global latency from config.json to every call', async () => {
    host.setLatency(300);
    expect((await virsh(['version'])).durationMs).toBeGreaterThanOrEqual(300);
  });

  it('fails with the given exit code and stderr instead of acting', async () => {
    const vm = host.addDomain({ name: 'vm1' });
    host.setFaults([
      {
        match: { subcommand: 'snapshot-create-as', domain: vm.uuid, name: 'doomed' },
        exitCode: 1,
        stderr: 'error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSnapshotCreateXML)',
      },
    ]);
    const failed = await virsh(['snapshot-create-as', '--domain=vm1', '--name=doomed']);
    expect(failed).toMatchObject({ exitCode: 1, stdout: '' });
    expect(failed.stderr).toBe('error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSnapshotCreateXML)\n');
    expect(host.domain('vm1').snapshots).toEqual([]);
    // Other names (and the domain by name) do not match the rule.
    expect((await virsh(['snapshot-create-as', '--domain=vm1', '--name=fine'])).exitCode).toBe(0);
  });

  it('hangs until a timeout kills it, leaving nothing behind', async () => {
    host.addDomain({ name: 'vm1' });
    host.setFaults([{ match: { subcommand: 'snapshot-create-as' }, hang: true }]);
    // Generous: on a loaded machine Node alone can take a second to start.
    const hung = await virsh(['snapshot-create-as', '--domain=vm1', '--name=stuck'], { timeout: 3_000 });
    expect(hung.timedOut).toBe(true);
    expect(hung.signal).toBe('SIGTERM');
    const calls = host.calls();
    expect(calls).toHaveLength(1);
    expect(isAlive(calls[0]!.pid)).toBe(false);
    expect(host.domain('vm1').snapshots).toEqual([]);
  });

  it('dies by SIGKILL before changing state with crash "before"', async () => {
    host.addDomain({ name: 'vm1' });
    host.setFaults([{ match: { subcommand: 'snapshot-create-as' }, crash: 'before' }]);
    const crashed = await virsh(['snapshot-create-as', '--domain=vm1', '--name=lost']);
    expect(crashed).toMatchObject({ signal: 'SIGKILL', stdout: '', stderr: '' });
    expect(host.domain('vm1').snapshots).toEqual([]);
  });

  it('dies by SIGKILL after changing state but before printing with crash "after"', async () => {
    host.addDomain({ name: 'vm1' });
    host.setFaults([{ match: { subcommand: 'snapshot-create-as' }, crash: 'after' }]);
    const crashed = await virsh(['snapshot-create-as', '--domain=vm1', '--name=ghost']);
    expect(crashed).toMatchObject({ signal: 'SIGKILL', stdout: '', stderr: '' });
    expect(host.domain('vm1').snapshots.map((snapshot) => snapshot.name)).toEqual(['ghost']);
    // The lock was not left behind: the next call works.
    host.setFaults([]);
    expect((await virsh(['snapshot-list', '--domain=vm1', '--name'])).stdout).toBe('ghost\n\n');
  });

  it('applies a rule only `times` times, counting across processes', async () => {
    host.addDomain({ name: 'vm1' });
    host.setFaults([{ match: { subcommand: 'domstate' }, exitCode: 1, stderr: 'error: failed to connect to the hypervisor', times: 2 }]);
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => virsh(['domstate', '--domain=vm1'])));
    expect(results.map((result) => result.exitCode).sort()).toEqual([0, 0, 0, 1, 1]);
  });

  it('reads faults afresh on every call, so a test can change them mid-run', async () => {
    host.addDomain({ name: 'vm1' });
    host.setFaults([{ exitCode: 1, stderr: 'error: failed to connect to the hypervisor' }]);
    expect((await virsh(['domstate', 'vm1'])).exitCode).toBe(1);
    host.setFaults([]);
    expect((await virsh(['domstate', 'vm1'])).exitCode).toBe(0);
  });
});

/**
 * Replays test/fixtures/virsh-output/capture.sh against the fake and compares every
 * captured case byte for byte (creation times aside: they are the clock's).
 */
describe('fake virsh: the real virsh 9.0 captures', () => {
  const captures = new URL('../fixtures/virsh-output/', import.meta.url);
  const RUN = '5eed0000-0000-4000-8000-000000000001';
  const OFF = '5eed0000-0000-4000-8000-000000000002';
  const CHAIN = '5eed0000-0000-4000-8000-000000000003';
  const MISSING = '5eed0000-0000-4000-8000-0000000000ff';
  const MULTILINE = `first line <b>bold</b> & "quoted" 'single'\nsecond line: ünïcødé ✓ 🚀\n\n  indented after a blank line`;

  type Step = { capture: string; args: string[]; uri?: string } | { setup: string[] } | { daemonDown: boolean };
  const cap = (capture: string, ...args: string[]): Step => ({ capture, args });
  const steps: Step[] = [
    cap('start', 'start', `--domain=${RUN}`),
    { setup: ['start', `--domain=${CHAIN}`] },
    cap('version', 'version'),
    cap('version-daemon', 'version', '--daemon'),
    cap('list-all', 'list', '--all'),
    cap('list-all-uuid', 'list', '--all', '--uuid'),
    cap('list-all-name', 'list', '--all', '--name'),
    cap('list-all-uuid-name', 'list', '--all', '--uuid', '--name'),
    cap('list-running-uuid', 'list', '--uuid'),
    cap('domname-by-uuid', 'domname', `--domain=${RUN}`),
    cap('domname-by-name', 'domname', '--domain=snapbot-fixture-run'),
    cap('domname-weird', 'domname', '--domain=5eed0000-0000-4000-8000-000000000005'),
    cap('domuuid-by-name', 'domuuid', '--domain=snapbot-fixture-run'),
    cap('domuuid-by-uuid', 'domuuid', `--domain=${RUN}`),
    cap('domstate-numeric-name-is-an-id', 'domstate', '--domain=1', '--reason'),
    cap('domuuid-numeric-name-is-an-id', 'domuuid', '--domain=1'),
    cap('domstate-running', 'domstate', `--domain=${RUN}`),
    cap('domstate-running-reason', 'domstate', `--domain=${RUN}`, '--reason'),
    cap('domstate-shutoff', 'domstate', `--domain=${OFF}`),
    cap('domstate-shutoff-reason', 'domstate', `--domain=${OFF}`, '--reason'),
    cap('domstate-no-such-domain-uuid', 'domstate', `--domain=${MISSING}`),
    cap('domstate-no-such-domain-name', 'domstate', '--domain=no-such-domain'),
    cap('domstate-option-looking-name', 'domstate', '--snapbot-fixture-dash'),
    cap('domstate-weird-name', 'domstate', '--domain=--snapbot-fixture-dash'),
    cap('snapshot-list-empty', 'snapshot-list', `--domain=${RUN}`),
    cap('snapshot-list-name-empty', 'snapshot-list', `--domain=${RUN}`, '--name'),
    cap('snapshot-current-name-none', 'snapshot-current', `--domain=${RUN}`, '--name'),
    cap('create-internal-running', 'snapshot-create-as', `--domain=${RUN}`, '--name=full-1', '--description=snapbot job 01JDXAMPLE0000000000000001'),
    cap('create-disk-only', 'snapshot-create-as', `--domain=${RUN}`, '--name=disk-1', '--description=snapbot job 01JDXAMPLE0000000000000002', '--disk-only', '--atomic'),
    cap('create-name-dashdash-help', 'snapshot-create-as', `--domain=${RUN}`, '--name=--help'),
    cap('create-name-dashdash-help-separate', 'snapshot-create-as', `--domain=${RUN}`, '--name', '--help'),
    cap('create-name-command-substitution', 'snapshot-create-as', `--domain=${RUN}`, '--name=$(reboot)'),
    cap('create-name-space', 'snapshot-create-as', `--domain=${RUN}`, '--name=a b'),
    cap('snapshot-list', 'snapshot-list', `--domain=${RUN}`),
    cap('snapshot-list-name', 'snapshot-list', `--domain=${RUN}`, '--name'),
    cap('snapshot-list-name-external', 'snapshot-list', `--domain=${RUN}`, '--name', '--external'),
    cap('snapshot-list-name-internal', 'snapshot-list', `--domain=${RUN}`, '--name', '--internal'),
    cap('snapshot-list-name-disk-only', 'snapshot-list', `--domain=${RUN}`, '--name', '--disk-only'),
    cap('snapshot-list-parent', 'snapshot-list', `--domain=${RUN}`, '--parent'),
    cap('snapshot-list-tree', 'snapshot-list', `--domain=${RUN}`, '--tree'),
    cap('snapshot-list-name-leaves', 'snapshot-list', `--domain=${RUN}`, '--name', '--leaves'),
    cap('snapshot-list-name-roots', 'snapshot-list', `--domain=${RUN}`, '--name', '--roots'),
    cap('snapshot-list-name-topological', 'snapshot-list', `--domain=${RUN}`, '--name', '--topological'),
    cap('snapshot-current-name', 'snapshot-current', `--domain=${RUN}`, '--name'),
    cap('snapshot-info-internal-running', 'snapshot-info', `--domain=${RUN}`, '--snapshotname=full-1'),
    cap('snapshot-info-disk-only', 'snapshot-info', `--domain=${RUN}`, '--snapshotname=disk-1'),
    cap('snapshot-info-current', 'snapshot-info', `--domain=${RUN}`, '--current'),
    cap('snapshot-dumpxml-internal-running', 'snapshot-dumpxml', `--domain=${RUN}`, '--snapshotname=full-1'),
    cap('snapshot-dumpxml-disk-only', 'snapshot-dumpxml', `--domain=${RUN}`, '--snapshotname=disk-1'),
    cap('snapshot-dumpxml-command-substitution', 'snapshot-dumpxml', `--domain=${RUN}`, '--snapshotname=$(reboot)'),
    cap('error-snapshot-list-no-such-domain', 'snapshot-list', `--domain=${MISSING}`),
    cap('error-create-no-such-domain', 'snapshot-create-as', `--domain=${MISSING}`, '--name=x'),
    cap('error-info-no-such-snapshot', 'snapshot-info', `--domain=${RUN}`, '--snapshotname=nope'),
    cap('error-dumpxml-no-such-snapshot', 'snapshot-dumpxml', `--domain=${RUN}`, '--snapshotname=nope'),
    cap('error-revert-no-such-snapshot', 'snapshot-revert', `--domain=${RUN}`, '--snapshotname=nope'),
    cap('error-delete-no-such-snapshot', 'snapshot-delete', `--domain=${RUN}`, '--snapshotname=nope'),
    cap('error-duplicate-internal', 'snapshot-create-as', `--domain=${RUN}`, '--name=full-1'),
    cap('error-duplicate-disk-only', 'snapshot-create-as', `--domain=${RUN}`, '--name=disk-1', '--disk-only', '--atomic'),
    cap('error-name-with-slash', 'snapshot-create-as', `--domain=${RUN}`, '--name=a/b'),
    cap('error-name-with-slash-disk-only', 'snapshot-create-as', `--domain=${RUN}`, '--name=a/b', '--disk-only', '--atomic'),
    cap('error-name-empty', 'snapshot-create-as', `--domain=${RUN}`, '--name='),
    cap('error-quiesce-without-agent', 'snapshot-create-as', `--domain=${RUN}`, '--name=q', '--disk-only', '--atomic', '--quiesce'),
    cap('error-revert-external', 'snapshot-revert', `--domain=${RUN}`, '--snapshotname=disk-1'),
    { capture: 'error-bad-socket', args: ['version', '--daemon'], uri: 'qemu:///system?socket=/run/libvirt/no-such-sock' },
    cap('error-unknown-option', 'snapshot-list', `--domain=${RUN}`, '--no-such-option'),
    cap('create-internal-shutoff', 'snapshot-create-as', `--domain=${OFF}`, '--name=off-1', '--description=taken while shut off'),
    cap('create-multiline-description', 'snapshot-create-as', `--domain=${OFF}`, '--name=notes ✓', `--description=${MULTILINE}`),
    cap('snapshot-dumpxml-internal-shutoff', 'snapshot-dumpxml', `--domain=${OFF}`, '--snapshotname=off-1'),
    cap('snapshot-dumpxml-multiline-description', 'snapshot-dumpxml', `--domain=${OFF}`, '--snapshotname=notes ✓'),
    cap('snapshot-info-multiline-description', 'snapshot-info', `--domain=${OFF}`, '--snapshotname=notes ✓'),
    cap('snapshot-list-unicode', 'snapshot-list', `--domain=${OFF}`),
    cap('snapshot-list-name-unicode', 'snapshot-list', `--domain=${OFF}`, '--name'),
    cap(
      'error-memspec-shutoff',
      'snapshot-create-as',
      `--domain=${OFF}`,
      '--name=mem',
      '--memspec',
      'file=/var/lib/snapbot-e2e/snapbot-fixture-off/mem.save,snapshot=external',
      '--diskspec',
      'vda,snapshot=external,file=/var/lib/snapbot-e2e/snapbot-fixture-off/disk.mem',
    ),
    cap('chain-create-internal', 'snapshot-create-as', `--domain=${CHAIN}`, '--name=int-0'),
    cap('chain-create-disk-only-1', 'snapshot-create-as', `--domain=${CHAIN}`, '--name=ext-1', '--disk-only', '--atomic'),
    cap('chain-create-disk-only-2', 'snapshot-create-as', `--domain=${CHAIN}`, '--name=ext-2', '--disk-only', '--atomic'),
    cap('chain-delete-external-in-chain', 'snapshot-delete', `--domain=${CHAIN}`, '--snapshotname=ext-2'),
    cap('chain-revert-internal', 'snapshot-revert', `--domain=${CHAIN}`, '--snapshotname=int-0'),
    cap('chain-domstate-reason-after-revert', 'domstate', `--domain=${CHAIN}`, '--reason'),
    cap('error-delete-external-off-chain', 'snapshot-delete', `--domain=${CHAIN}`, '--snapshotname=ext-1'),
    cap('chain-delete-metadata', 'snapshot-delete', `--domain=${CHAIN}`, '--snapshotname=ext-1', '--metadata'),
    cap('error-duplicate-disk-only-file-exists', 'snapshot-create-as', `--domain=${CHAIN}`, '--name=ext-1', '--disk-only', '--atomic'),
    cap('chain-delete-internal', 'snapshot-delete', `--domain=${CHAIN}`, '--snapshotname=int-0'),
    cap('chain-destroy', 'destroy', `--domain=${CHAIN}`),
    cap('domstate-shutoff-destroyed-reason', 'domstate', `--domain=${CHAIN}`, '--reason'),
    { daemonDown: true },
    cap('error-daemon-down-version', 'version'),
    cap('error-daemon-down-list', 'list', '--all', '--uuid'),
    cap('error-daemon-down-snapshot-list', 'snapshot-list', `--domain=${RUN}`, '--name'),
  ];

  /** Creation times are the clock's: blank them on both sides. */
  const normalize = (text: string) =>
    text
      .replace(/<creationTime>\d+<\/creationTime>/g, '<creationTime>T</creationTime>')
      .replace(/\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}/g, 'YYYY-MM-DD hh:mm:ss +zzzz');

  it.skipIf(!existsSync(new URL('cases.tsv', captures)))('replays capture.sh with identical stdout, stderr and exit codes', async () => {
    const fake = await FakeVirshHost.create({ libvirtVersion: '9.0.0', qemuVersion: '7.2.22' });
    try {
      const define = (name: string, uuid: string) =>
        fake.addDomain({ name, uuid, state: 'shut off', type: 'qemu', diskPath: `/var/lib/snapbot-e2e/${name}/disk.qcow2` });
      define('snapbot-fixture-run', RUN);
      define('snapbot-fixture-off', OFF);
      define('snapbot-fixture-chain', CHAIN);
      define('snapbot fixture ünï ✓', '5eed0000-0000-4000-8000-000000000004');
      define('--snapbot-fixture-dash', '5eed0000-0000-4000-8000-000000000005');
      define('1', '5eed0000-0000-4000-8000-000000000006');

      const exitCodes = new Map(
        readFileSync(new URL('cases.tsv', captures), 'utf8')
          .split('\n')
          .slice(1)
          .filter((line) => line !== '')
          .map((line) => {
            const [name, exit] = line.split('\t');
            return [name!, Number(exit)] as const;
          }),
      );
      for (const step of steps) {
        if ('daemonDown' in step) {
          fake.setDaemonDown(step.daemonDown);
          continue;
        }
        const args = 'setup' in step ? step.setup : step.args;
        const uri = 'capture' in step && step.uri !== undefined ? step.uri : 'qemu:///system';
        const result = await execa(fake.path, ['-c', uri, ...args], {
          env: fake.env,
          reject: false,
          stripFinalNewline: false,
        });
        if ('setup' in step) {
          expect(result.exitCode, step.setup.join(' ')).toBe(0);
          continue;
        }
        const expected = (stream: string) => normalize(readFileSync(new URL(`${step.capture}.${stream}`, captures), 'utf8'));
        expect(
          { exitCode: result.exitCode, stdout: normalize(String(result.stdout)), stderr: normalize(String(result.stderr)) },
          step.capture,
        ).toEqual({ exitCode: exitCodes.get(step.capture), stdout: expected('stdout'), stderr: expected('stderr') });
      }
    } finally {
      await fake.dispose();
    }
    // About 90 virsh runs in a row: give a loaded CI machine room.
  }, 300_000);
});
