import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../../shared/errors.js';
import { LITERAL_NAMES } from '../../../fixtures/names-table.js';
import {
  parseDomainState,
  parseDomblklistDetails,
  parseDominfoMemoryKiB,
  parseNameList,
  parseSingleName,
  parseSnapshotTable,
  parseSnapshotXml,
  parseUuidList,
  parseVersion,
} from '../../../../worker/hypervisor/virsh-parsers.js';

/** A real virsh output captured by test/fixtures/virsh-output/capture.sh (see its README). */
function fixture(file: string): string {
  return readFileSync(fileURLToPath(new URL(`../../../fixtures/virsh-output/${file}`, import.meta.url)), 'utf8');
}

/** The ISO time of a fixture's creationTime (it changes on every capture). */
function createdAtOf(xml: string): string {
  const seconds = /<creationTime>(\d+)<\/creationTime>/.exec(xml)?.[1];
  return new Date(Number(seconds) * 1000).toISOString();
}

/** Escapes text the way libvirt's virBufferEscapeString does. */
function libvirtEscape(text: string): string {
  return text
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll("'", '&apos;');
}

function snapshotXml(options: {
  name: string;
  description?: string;
  parent?: string;
  state?: string;
  memory?: 'no' | 'internal' | 'external';
  disk?: 'no' | 'internal' | 'external';
  creationTime?: number;
}): string {
  const lines = ['<domainsnapshot>', `  <name>${libvirtEscape(options.name)}</name>`];
  if (options.description !== undefined) lines.push(`  <description>${libvirtEscape(options.description)}</description>`);
  lines.push(`  <state>${options.state ?? 'running'}</state>`);
  if (options.parent !== undefined) lines.push('  <parent>', `    <name>${libvirtEscape(options.parent)}</name>`, '  </parent>');
  lines.push(`  <creationTime>${options.creationTime ?? 1795827079}</creationTime>`);
  if (options.memory !== undefined) lines.push(`  <memory snapshot='${options.memory}'/>`);
  if (options.disk !== undefined) {
    lines.push('  <disks>', `    <disk name='vda' snapshot='${options.disk}'/>`, '  </disks>');
  }
  lines.push("  <domain type='qemu'>", '    <name>vm</name>', '    <description>domain text</description>', '  </domain>');
  lines.push('</domainsnapshot>', '');
  return lines.join('\n');
}

describe('parseVersion', () => {
  it('reads the daemon libvirt version and the running QEMU version', () => {
    expect(parseVersion(fixture('version-daemon.stdout'))).toEqual({
      libvirt: '9.0.0',
      qemu: '7.2.22',
      library: '9.0.0',
      daemon: '9.0.0',
      hypervisorName: 'QEMU',
    });
  });

  it('prefers the daemon version over the library version', () => {
    const text = fixture('version-daemon.stdout').replace('Running against daemon: 9.0.0', 'Running against daemon: 11.3.0');
    expect(parseVersion(text).libvirt).toBe('11.3.0');
  });

  it('falls back to the library version when virsh prints no daemon line', () => {
    const text = fixture('version-daemon.stdout').replace('Running against daemon: 9.0.0\n', '');
    expect(parseVersion(text)).toMatchObject({ libvirt: '9.0.0', daemon: null });
  });

  it('reports no QEMU version for another hypervisor', () => {
    const text = fixture('version-daemon.stdout').replace('Running hypervisor: QEMU 7.2.22', 'Running hypervisor: Test 2.0.0');
    expect(parseVersion(text)).toMatchObject({ qemu: null, hypervisorName: 'Test' });
  });

  it('reads plain `virsh version` (no daemon line) from the library line', () => {
    expect(parseVersion(fixture('version.stdout'))).toMatchObject({ libvirt: '9.0.0', qemu: '7.2.22' });
  });

  it('refuses output that is not a version report', () => {
    expect(() => parseVersion('hello\n')).toThrow(SnapbotError);
  });
});

describe('parseUuidList', () => {
  it('reads the captured list --all --uuid', () => {
    expect(parseUuidList(fixture('list-all-uuid.stdout'))).toEqual([
      '5eed0000-0000-4000-8000-000000000001',
      '5eed0000-0000-4000-8000-000000000003',
      '5eed0000-0000-4000-8000-000000000005',
      '5eed0000-0000-4000-8000-000000000006',
      '5eed0000-0000-4000-8000-000000000004',
      '5eed0000-0000-4000-8000-000000000002',
    ]);
  });

  it('reads one UUID a line and ignores the blank line at the end', () => {
    expect(parseUuidList('b84e1ad0-2d70-4bbb-856d-a73dd78e5eff\n6f1c2d3e-0000-4bbb-856d-a73dd78e5e00\n\n')).toEqual([
      'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff',
      '6f1c2d3e-0000-4bbb-856d-a73dd78e5e00',
    ]);
  });

  it('reads an empty host as no domains', () => {
    expect(parseUuidList('\n')).toEqual([]);
    expect(parseUuidList('')).toEqual([]);
  });

  it('refuses a line that is not a UUID', () => {
    expect(() => parseUuidList(fixture('list-all.stdout'))).toThrow(SnapbotError);
  });
});

describe('parseSnapshotTable', () => {
  it('reads names and creation times from the real table, in the same names as --name gives', () => {
    const rows = parseSnapshotTable(fixture('snapshot-list.stdout'));
    expect(rows?.map((row) => row.name).sort()).toEqual(parseNameList(fixture('snapshot-list-name.stdout')).sort());
    expect(rows?.find((row) => row.name === 'a b')?.createdAt).toBe('2026-11-28T01:00:36.000Z');
    expect(rows?.find((row) => row.name === '--help')?.createdAt).toBe('2026-11-28T01:00:35.000Z');
  });

  it('reads unicode names and an empty table', () => {
    expect(parseSnapshotTable(fixture('snapshot-list-unicode.utf8.stdout'))?.map((row) => row.name)).toEqual(['notes ✓', 'off-1']);
    expect(parseSnapshotTable(fixture('snapshot-list-empty.stdout'))).toEqual([]);
  });

  it('takes the time at the end of the line, even when the name holds one, and honours the offset', () => {
    const table = [' Name   Creation Time   State', '-----', ' pre 2026-01-01 00:00:00 +0000 x   2026-03-02 10:20:30 +0130   shutoff', ''].join('\n');
    expect(parseSnapshotTable(table)).toEqual([{ name: 'pre 2026-01-01 00:00:00 +0000 x', createdAt: '2026-03-02T08:50:30.000Z' }]);
  });

  it('gives null, not a guess, for a table it cannot read with certainty', () => {
    expect(parseSnapshotTable(fixture('snapshot-list-name.stdout'))).toBeNull();
    expect(parseSnapshotTable([' Name   Creation Time   State', '-----', ' half-a-row', ''].join('\n'))).toBeNull();
    expect(parseSnapshotTable([' Name   Creation Time   State', '-----', ' bad 2026-13-45 99:99:99 +0000   running', ''].join('\n'))).toBeNull();
  });
});

describe('parseNameList', () => {
  it('reads sorted names followed by a blank line', () => {
    expect(parseNameList(fixture('snapshot-list-name.stdout'))).toEqual(['$(reboot)', '--help', 'a b', 'disk-1', 'full-1']);
    expect(parseNameList(fixture('snapshot-list-name-unicode.stdout'))).toEqual(['notes ✓', 'off-1']);
  });

  it('keeps names exactly, spaces and all', () => {
    expect(parseNameList('5\n<&> a b\n  padded  \nünï ✓\n\n')).toEqual(['5', '<&> a b', '  padded  ', 'ünï ✓']);
  });

  it('reads a domain without snapshots as an empty list', () => {
    expect(parseNameList(fixture('snapshot-list-name-empty.stdout'))).toEqual([]);
  });
});

describe('parseSingleName', () => {
  it('reads domname output (name, then a blank line)', () => {
    expect(parseSingleName(fixture('domname-by-uuid.stdout'))).toBe('snapbot-fixture-run');
    expect(parseSingleName(fixture('domname-weird.stdout'))).toBe('--snapbot-fixture-dash');
  });

  it('reads snapshot-current --name output (name and one newline)', () => {
    expect(parseSingleName(fixture('snapshot-current-name.stdout'))).toBe('a b');
  });

  it('keeps spaces inside and around a name', () => {
    expect(parseSingleName(' a b \n\n')).toBe(' a b ');
  });

  it('gives null for empty output', () => {
    expect(parseSingleName('')).toBeNull();
    expect(parseSingleName('\n')).toBeNull();
  });
});

describe('parseDomainState', () => {
  it.each([
    ['domstate-running.stdout', 'running'],
    ['domstate-shutoff.stdout', 'shut off'],
    ['domstate-running-reason.stdout', 'running (booted)'],
    ['domstate-shutoff-reason.stdout', 'shut off (unknown)'],
    ['chain-domstate-reason-after-revert.stdout', 'running (from snapshot)'],
    ['domstate-shutoff-destroyed-reason.stdout', 'shut off (destroyed)'],
  ])('reads %s as %j', (file, state) => {
    expect(parseDomainState(fixture(file))).toBe(state);
  });

  it('reads a paused domain', () => {
    expect(parseDomainState('paused\n\n')).toBe('paused');
  });

  it('refuses empty output', () => {
    expect(() => parseDomainState('\n\n')).toThrow(SnapbotError);
  });
});

// Byte for byte what virsh 9.0.0 (Debian 12, C locale) printed for a domain with every kind
// of drive (test:/// driver: the table and the lines are virsh's own code, whatever the driver).
const DOMBLKLIST_DETAILS =
  ' Type      Device   Target   Source\n' +
  '-------------------------------------------------------------------\n' +
  ' file      disk     vda      /var/lib/libvirt/images/web 01.qcow2\n' +
  ' block     disk     vdb      /dev/vg0/web-data\n' +
  ' network   disk     vdc      pool/image\n' +
  ' volume    disk     vdd      vol1\n' +
  ' file      cdrom    sda      /srv/iso/debian.iso\n' +
  ' file      cdrom    sdb      -\n' +
  ' file      floppy   fda      /srv/floppy.img\n' +
  '\n';

describe('parseDomblklistDetails', () => {
  it('reads every drive in order: type, device, target, and the source with its spaces', () => {
    expect(parseDomblklistDetails(DOMBLKLIST_DETAILS)).toEqual([
      { type: 'file', device: 'disk', target: 'vda', source: '/var/lib/libvirt/images/web 01.qcow2' },
      { type: 'block', device: 'disk', target: 'vdb', source: '/dev/vg0/web-data' },
      { type: 'network', device: 'disk', target: 'vdc', source: 'pool/image' },
      { type: 'volume', device: 'disk', target: 'vdd', source: 'vol1' },
      { type: 'file', device: 'cdrom', target: 'sda', source: '/srv/iso/debian.iso' },
      { type: 'file', device: 'cdrom', target: 'sdb', source: null },
      { type: 'file', device: 'floppy', target: 'fda', source: '/srv/floppy.img' },
    ]);
  });

  it('reads a domain without disks as none', () => {
    expect(parseDomblklistDetails(' Type   Device   Target   Source\n----------------------------------\n\n')).toEqual([]);
  });

  it('reads the source from its column, so blanks at its start and non-ASCII letters survive', () => {
    const text =
      ' Type   Device   Target   Source\n' +
      '------------------------------------------------------\n' +
      ' file   disk     vda      /srv/vm images/ünï ✓.qcow2\n' +
      ' file   disk     vdb        /lead\n\n';
    expect(parseDomblklistDetails(text).map((disk) => disk.source)).toEqual(['/srv/vm images/ünï ✓.qcow2', '  /lead']);
  });

  it.each([
    ['no header', ' file   disk     vda      /x\n\n'],
    ['the table without --details', ' Target   Source\n------------------\n vda      /x\n\n'],
    ['a row without a source', ' Type   Device   Target   Source\n--------------------------------\n file   disk     vda\n\n'],
    ['a row out of its columns', ' Type   Device   Target   Source\n--------------------------------\n file disk vda /x\n\n'],
    ['nothing', ''],
  ])('refuses %s', (_what, text) => {
    expect(() => parseDomblklistDetails(text)).toThrow('virsh domblklist --details printed output snapbot cannot read');
  });
});

describe('parseDominfoMemoryKiB', () => {
  it('reads "Used memory" (not "Max memory") from virsh 9.0', () => {
    const text =
      'Id:             1\nName:           web-01\nUUID:           5eed0000-0000-4000-8000-000000000001\nOS Type:        linux\n' +
      'State:          running\nCPU(s):         2\nCPU time:       1796005109.5s\nMax memory:     4194304 KiB\n' +
      'Used memory:    2097152 KiB\nPersistent:     yes\nAutostart:      disable\nManaged save:   no\n' +
      'Security model: testSecurity\nSecurity DOI:   \nSecurity label: libvirt-test (enforcing)\n\n';
    expect(parseDominfoMemoryKiB(text)).toBe(2097152);
  });

  it('reads a QEMU domain with taint messages, and the "kB" of old virsh', () => {
    expect(parseDominfoMemoryKiB('Max memory:     no limit\nUsed memory:    3145728 KiB\nMessages:       tainted: running with undesirable elevated privileges\n\n')).toBe(3145728);
    expect(parseDominfoMemoryKiB('Used memory:    65536 kB\n')).toBe(65536);
  });

  it.each([
    ['no such line', 'Max memory:     65536 KiB\n\n'],
    ['another unit', 'Used memory:    64 MiB\n'],
    ['a number too large to be exact', 'Used memory:    99999999999999999999 KiB\n'],
  ])('refuses %s', (_what, text) => {
    expect(() => parseDominfoMemoryKiB(text)).toThrow('virsh dominfo printed output snapbot cannot read');
  });
});

describe('parseSnapshotXml', () => {
  it('reads an internal memory + disk snapshot of a running domain', () => {
    const xml = fixture('snapshot-dumpxml-internal-running.stdout');
    expect(parseSnapshotXml(xml)).toEqual({
      name: 'full-1',
      description: 'snapbot job 01JDXAMPLE0000000000000001',
      state: 'running',
      parent: null,
      createdAt: createdAtOf(xml),
      memory: true,
      location: 'internal',
    });
  });

  it('reads a snapshot whose disk sits on a chain of 500 overlays (one per disk-only snapshot)', () => {
    const xml = fixture('snapshot-dumpxml-disk-only.stdout');
    const chain = (depth: number): string =>
      depth === 0 ? '<backingStore/>' : `<backingStore type='file'><format type='qcow2'/><source file='/d/disk.${depth}'/>${chain(depth - 1)}</backingStore>`;
    const deep = xml.replace('<backingStore/>', chain(500));
    expect(deep.length).toBeGreaterThan(xml.length + 500 * 50);
    expect(parseSnapshotXml(deep)).toEqual(parseSnapshotXml(xml));
  });

  it('reads an external disk-only snapshot with its parent', () => {
    const xml = fixture('snapshot-dumpxml-disk-only.stdout');
    expect(parseSnapshotXml(xml)).toEqual({
      name: 'disk-1',
      description: 'snapbot job 01JDXAMPLE0000000000000002',
      state: 'disk-snapshot',
      parent: 'full-1',
      createdAt: createdAtOf(xml),
      memory: false,
      location: 'external',
    });
  });

  it('reads an internal snapshot of a shut-off domain as disk state only', () => {
    const xml = fixture('snapshot-dumpxml-internal-shutoff.stdout');
    expect(parseSnapshotXml(xml)).toEqual({
      name: 'off-1',
      description: 'taken while shut off',
      state: 'shutoff',
      parent: null,
      createdAt: createdAtOf(xml),
      memory: false,
      location: 'internal',
    });
  });

  it('reads a name that looks like shell, and an option-looking parent', () => {
    expect(parseSnapshotXml(fixture('snapshot-dumpxml-command-substitution.stdout'))).toMatchObject({
      name: '$(reboot)',
      parent: '--help',
      state: 'running',
      location: 'internal',
    });
  });

  it('decodes an escaped multi-line unicode description exactly', () => {
    expect(parseSnapshotXml(fixture('snapshot-dumpxml-multiline-description.stdout'))).toMatchObject({
      name: 'notes ✓',
      description:
        'first line <b>bold</b> & "quoted" \'single\'\nsecond line: ünïcødé ✓ 🚀\n\n  indented after a blank line',
    });
  });

  it("never takes the embedded domain's name or description", () => {
    const snapshot = parseSnapshotXml(snapshotXml({ name: 's', memory: 'no' }));
    expect(snapshot.name).toBe('s');
    expect(snapshot.description).toBeNull();
  });

  it.each([...LITERAL_NAMES, '007', '1e3', '0x1F', '-0', '1.50', 'true', 'null', '--help', 'a b', '<&>', "it's \"x\"", '&amp;', '&#10;', 'ünïcødé ✓ 日本', '  padded  ', 'constructor', '__proto__'])(
    'round-trips the name %j exactly',
    (name) => {
      const snapshot = parseSnapshotXml(snapshotXml({ name, parent: name, memory: 'internal', disk: 'internal' }));
      expect(snapshot.name).toBe(name);
      expect(snapshot.parent).toBe(name);
    },
  );

  it.each([
    'one line',
    '  leading and trailing spaces  ',
    'first line\nsecond line\n\nfourth after a blank',
    'tabs\tinside\t',
    '<b>not markup</b> & "quotes" \'too\'',
    'literal entity text: &lt; &amp;amp; &#10;',
    '12345',
    'émoji ✓ 日本語',
    'keeps the job marker\n[snapbot job 42]',
  ])('round-trips the description %j exactly', (description) => {
    expect(parseSnapshotXml(snapshotXml({ name: 's', description, memory: 'no', disk: 'external' })).description).toBe(
      description,
    );
  });

  it('decodes numeric character references', () => {
    const xml = snapshotXml({ name: 's', memory: 'no' }).replace(
      '<state>',
      '<description>a&#10;b&#x41;</description>\n  <state>',
    );
    expect(parseSnapshotXml(xml).description).toBe('a\nbA');
  });

  it('reads an absent description as null and an empty one as empty', () => {
    expect(parseSnapshotXml(snapshotXml({ name: 's', memory: 'no' })).description).toBeNull();
    expect(parseSnapshotXml(snapshotXml({ name: 's', description: '', memory: 'no' })).description).toBe('');
  });

  it.each([
    [{ memory: 'internal', disk: 'internal' }, { memory: true, location: 'internal' }],
    [{ memory: 'no', disk: 'internal' }, { memory: false, location: 'internal' }],
    [{ memory: 'no', disk: 'external' }, { memory: false, location: 'external' }],
    [{ memory: 'external', disk: 'external' }, { memory: true, location: 'external' }],
    [{ memory: 'external', disk: 'no' }, { memory: true, location: 'external' }],
  ] as const)('reads memory and disks %j as %j', (parts, expected) => {
    expect(parseSnapshotXml(snapshotXml({ name: 's', ...parts }))).toMatchObject(expected);
  });

  it('treats a disk-only snapshot without a <memory> element (libvirt < 1.0.1) as external', () => {
    expect(parseSnapshotXml(snapshotXml({ name: 's', state: 'disk-snapshot' }))).toMatchObject({
      location: 'external',
      memory: false,
    });
    expect(parseSnapshotXml(snapshotXml({ name: 's', state: 'shutoff' }))).toMatchObject({ location: 'internal' });
  });

  it('turns creationTime (seconds since the epoch) into an ISO string', () => {
    expect(parseSnapshotXml(snapshotXml({ name: 's', creationTime: 0, memory: 'no' })).createdAt).toBe(
      '1970-01-01T00:00:00.000Z',
    );
  });

  it.each([
    ['not XML at all'],
    ['<domain><name>x</name></domain>'],
    ['<domainsnapshot><state>running</state><creationTime>1</creationTime></domainsnapshot>'],
    ['<domainsnapshot><name>x</name><state>running</state></domainsnapshot>'],
    ['<domainsnapshot><name>x</name><state>running</state><creationTime>soon</creationTime></domainsnapshot>'],
  ])('refuses %j', (xml) => {
    expect(() => parseSnapshotXml(xml)).toThrow(SnapbotError);
  });
});

describe('parseVersion, line by line', () => {
  const report = (...lines: string[]) => `${lines.join('\n')}\n`;

  it('reads a daemon line on its own (no library line)', () => {
    expect(parseVersion(report('Running against daemon: 10.0.0'))).toEqual({
      libvirt: '10.0.0',
      qemu: null,
      library: null,
      daemon: '10.0.0',
      hypervisorName: null,
    });
  });

  it('reads only whole lines that start with the words libvirt prints', () => {
    expect(() => parseVersion(report('# Using library: libvirt 9.0.0', 'x Running against daemon: 9.0.0'))).toThrow(
      'virsh version --daemon printed output snapbot cannot read',
    );
    expect(() => parseVersion(report('Using library: libvirt 9.0.0 (patched)'))).toThrow(SnapbotError);
    expect(() => parseVersion(report('Using library: libvirt '))).toThrow(SnapbotError);
  });

  it('reads the daemon line wherever it stands, and only when the version ends the line', () => {
    expect(parseVersion('Running against daemon: 9.1.0\nUsing library: libvirt 9.0.0\n')).toMatchObject({ libvirt: '9.1.0', daemon: '9.1.0' });
    expect(parseVersion('Using library: libvirt 9.0.0\nRunning against daemon: 9.1.0 (remote)\n')).toMatchObject({ libvirt: '9.0.0', daemon: null });
  });

  it('allows blanks at the end of a line', () => {
    expect(parseVersion('Using library: libvirt 9.0.0  \r\nRunning hypervisor: QEMU 8.2.1 \r\n')).toMatchObject({ library: '9.0.0', qemu: '8.2.1' });
    expect(parseVersion(report('Running against daemon: 9.1.0\t'))).toMatchObject({ daemon: '9.1.0' });
  });

  it('reads a hypervisor name of several words and a version of any number of parts', () => {
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: Cloud Hypervisor 38'))).toMatchObject({
      hypervisorName: 'Cloud Hypervisor',
      qemu: null,
    });
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: QEMU 8.2.1.5'))).toMatchObject({ qemu: '8.2.1.5' });
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: qemu 9'))).toMatchObject({ qemu: '9', hypervisorName: 'qemu' });
  });

  it('ignores a hypervisor line without a version, or with something after it', () => {
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: QEMU'))).toMatchObject({ hypervisorName: null, qemu: null });
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: QEMU 8.2.1 (debian)'))).toMatchObject({ hypervisorName: null });
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: QEMU 8.x'))).toMatchObject({ hypervisorName: null });
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'The Running hypervisor: QEMU 8.2'))).toMatchObject({ hypervisorName: null });
  });

  it('gives a QEMU version only for QEMU itself', () => {
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: QEMU-like 8.2'))).toMatchObject({ hypervisorName: 'QEMU-like', qemu: null });
    expect(parseVersion(report('Using library: libvirt 9.0.0', 'Running hypervisor: Not QEMU 8.2'))).toMatchObject({ hypervisorName: 'Not QEMU', qemu: null });
  });

  it('keeps what it could not read, for the logs', () => {
    try {
      parseVersion('x'.repeat(3000));
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: 'INTERNAL', detail: { command: 'version --daemon', output: 'x'.repeat(2000) } });
    }
  });
});

describe('parseUuidList, line by line', () => {
  it('reads UUIDs in either case, with blanks around them', () => {
    expect(parseUuidList('  B84E1AD0-2D70-4BBB-856D-A73DD78E5EFF \n\n')).toEqual(['B84E1AD0-2D70-4BBB-856D-A73DD78E5EFF']);
  });

  it.each([
    'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff0',
    '0b84e1ad0-2d70-4bbb-856d-a73dd78e5eff',
    'b84e1ad0-2d70-4bbb-856d-a73dd78e5ef',
    'b84e1ad02d704bbb856da73dd78e5eff',
    'b84e1ad0 2d70 4bbb 856d a73dd78e5eff',
    'z84e1ad0-2d70-4bbb-856d-a73dd78e5eff',
  ])('refuses %j', (line) => {
    expect(() => parseUuidList(`b84e1ad0-2d70-4bbb-856d-a73dd78e5eff\n${line}\n`)).toThrow('virsh list --uuid printed output snapbot cannot read');
  });
});

describe('parseDomainState, line by line', () => {
  it('takes the first line that is not blank, without its blanks', () => {
    expect(parseDomainState('\n   \n  running (booted)  \nshut off\n')).toBe('running (booted)');
  });

  it('says which command it could not read', () => {
    expect(() => parseDomainState('')).toThrow('virsh domstate printed output snapbot cannot read');
  });
});

describe('parseSnapshotXml, what it refuses', () => {
  const document = (inner: string) => `<domainsnapshot>${inner}</domainsnapshot>`;
  const state = '<state>running</state>';
  const time = '<creationTime>1795827079</creationTime>';

  it.each([
    ['an empty <name>', document(`<name></name>${state}${time}`)],
    ['a self-closing <name/>', document(`<name/>${state}${time}`)],
    ['a <name> with only attributes', document(`<name kind="x"/>${state}${time}`)],
    ['no <state>', document(`<name>s</name>${time}`)],
    ['an empty <creationTime>', document(`<name>s</name>${state}<creationTime></creationTime>`)],
    ['a creationTime with letters before the digits', document(`<name>s</name>${state}<creationTime>t1795827079</creationTime>`)],
    ['a creationTime with letters after the digits', document(`<name>s</name>${state}<creationTime>1795827079s</creationTime>`)],
    ['a negative creationTime', document(`<name>s</name>${state}<creationTime>-1</creationTime>`)],
    ['a fractional creationTime', document(`<name>s</name>${state}<creationTime>1.5</creationTime>`)],
    ['no <domainsnapshot> text at all', '<domainsnapshot/>'],
  ])('refuses %s', (_what, xml) => {
    expect(() => parseSnapshotXml(xml)).toThrow(
      expect.objectContaining({ code: 'INTERNAL', message: 'virsh snapshot-dumpxml printed output snapbot cannot read' }),
    );
  });

  it('refuses XML it cannot parse, keeping the parser error as the cause', () => {
    try {
      parseSnapshotXml('<domainsnapshot><name>s</name><!-- cut off');
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: 'INTERNAL', detail: { command: 'snapshot-dumpxml' } });
      expect((error as Error).cause).toBeDefined();
    }
  });

  it('reads a creationTime with blanks around it', () => {
    expect(parseSnapshotXml(document(`<name>s</name>${state}<creationTime>\n  60 \n</creationTime>`)).createdAt).toBe('1970-01-01T00:01:00.000Z');
  });
});

describe('parseSnapshotXml, details', () => {
  it('reads a name and a state with blanks, keeping the name exactly', () => {
    const parsed = parseSnapshotXml('<domainsnapshot><name> a b </name><state> shutoff </state><creationTime>1</creationTime></domainsnapshot>');
    expect(parsed).toMatchObject({ name: ' a b ', state: 'shutoff', location: 'internal', memory: false, parent: null, description: null });
  });

  it('reads the text of an element that also has attributes', () => {
    const parsed = parseSnapshotXml(
      '<domainsnapshot><name lang="en">s</name><state>running</state><creationTime>1</creationTime><description lang="en">why</description><description>second</description></domainsnapshot>',
    );
    expect(parsed).toMatchObject({ name: 's', description: 'why' });
  });

  it('reads an element with attributes and no text as empty', () => {
    const parsed = parseSnapshotXml('<domainsnapshot><name>s</name><state>running</state><creationTime>1</creationTime><description lang="en"/></domainsnapshot>');
    expect(parsed.description).toBe('');
  });

  it('reads an external snapshot from any one external disk, even with memory="no"', () => {
    const xml = snapshotXml({ name: 's', memory: 'no', disk: 'internal' }).replace(
      "<disk name='vda' snapshot='internal'/>",
      "<disk name='vda' snapshot='internal'/><disk name='vdb' snapshot='external'/>",
    );
    expect(parseSnapshotXml(xml)).toMatchObject({ location: 'external', memory: false });
  });

  it('reads a disk without a snapshot attribute as not external', () => {
    const xml = snapshotXml({ name: 's', memory: 'no', disk: 'internal' }).replace("<disk name='vda' snapshot='internal'/>", "<disk name='vda'/>");
    expect(parseSnapshotXml(xml)).toMatchObject({ location: 'internal' });
  });

  it('reads a <memory> element without a snapshot attribute as no memory', () => {
    const xml = snapshotXml({ name: 's', state: 'disk-snapshot', disk: 'internal' }).replace('<disks>', "<memory file='/var/lib/s.mem'/><disks>");
    expect(parseSnapshotXml(xml)).toMatchObject({ memory: false, location: 'internal' });
  });

  it('reads an old disk-only snapshot (no <memory>) as external even with blanks around its state', () => {
    const xml = '<domainsnapshot><name>s</name><state> disk-snapshot </state><creationTime>1</creationTime></domainsnapshot>';
    expect(parseSnapshotXml(xml)).toMatchObject({ state: 'disk-snapshot', location: 'external' });
  });

  it('reads a <memory> element with text but no attributes as no <memory> element', () => {
    const xml = '<domainsnapshot><name>s</name><state>disk-snapshot</state><creationTime>1</creationTime><memory>?</memory></domainsnapshot>';
    expect(parseSnapshotXml(xml)).toMatchObject({ location: 'external', memory: false });
  });

  it('reads the parent name, or null without one', () => {
    expect(parseSnapshotXml(snapshotXml({ name: 's', parent: 'base', memory: 'no' })).parent).toBe('base');
    expect(parseSnapshotXml(snapshotXml({ name: 's', memory: 'no' })).parent).toBeNull();
  });
});
