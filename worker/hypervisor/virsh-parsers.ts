import { XMLParser } from 'fast-xml-parser';
import { SnapbotError } from '../../shared/errors.js';
import type { DiskSource, HypervisorVersion, RawSnapshot } from './hypervisor.js';

/**
 * Pure parsers for what virsh prints on stdout. They take the text exactly as virsh
 * wrote it (final newlines included) and throw an INTERNAL SnapbotError when the text
 * is not what libvirt prints, so a surprise never turns into a silently wrong answer.
 */

/** What `virsh version --daemon` says, plus the two numbers the worker reports. */
export interface ParsedVersion extends HypervisorVersion {
  /** "Using library: libvirt X": the libvirt that virsh itself links. */
  library: string | null;
  /** "Running against daemon: X": the libvirt daemon the URI reaches. */
  daemon: string | null;
  /** "Running hypervisor: NAME X": NAME, e.g. "QEMU". */
  hypervisorName: string | null;
}

/** A snapshot as `snapshot-dumpxml` describes it; whether it is current comes from elsewhere. */
export type ParsedSnapshot = Omit<RawSnapshot, 'current'>;

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Parses `virsh version --daemon`. `libvirt` is the daemon's version (the one that
 * decides what snapshot operations work), falling back to the library's when virsh
 * did not print the daemon line; `qemu` is the running hypervisor's version when that
 * hypervisor is QEMU.
 */
export function parseVersion(stdout: string): ParsedVersion {
  const library = /^Using library: libvirt (\S+)\s*$/m.exec(stdout)?.[1] ?? null;
  const daemon = /^Running against daemon: (\S+)\s*$/m.exec(stdout)?.[1] ?? null;
  const hypervisor = /^Running hypervisor: (.+?) (\d+(?:\.\d+)*)\s*$/m.exec(stdout);
  if (library === null && daemon === null) throw unreadable('version --daemon', stdout);
  const hypervisorName = hypervisor?.[1] ?? null;
  const qemu = hypervisorName !== null && /^qemu$/i.test(hypervisorName) ? (hypervisor?.[2] ?? null) : null;
  return { libvirt: daemon ?? library, qemu, library, daemon, hypervisorName };
}

/**
 * Parses `virsh list --all --uuid --name`: "UUID NAME" a line (one space; the name as it
 * is, spaces at either end included — libvirt refuses newlines in names), then a blank line.
 */
export function parseUuidNameList(stdout: string): Array<{ uuid: string; name: string }> {
  const domains: Array<{ uuid: string; name: string }> = [];
  for (const line of stdout.split('\n')) {
    if (line === '') continue;
    const uuid = line.slice(0, 36);
    if (!UUID_PATTERN.test(uuid) || line[36] !== ' ' || line.length === 37) throw unreadable('list --uuid --name', stdout);
    domains.push({ uuid, name: line.slice(37) });
  }
  return domains;
}

/** Parses `virsh list --all --uuid`: one UUID a line, then a blank line. */
export function parseUuidList(stdout: string): string[] {
  const uuids: string[] = [];
  for (const line of stdout.split('\n')) {
    const uuid = line.trim();
    if (uuid === '') continue;
    if (!UUID_PATTERN.test(uuid)) throw unreadable('list --uuid', stdout);
    uuids.push(uuid);
  }
  return uuids;
}

/**
 * Parses a list of names, one a line (`snapshot-list --name`: sorted names, then a
 * blank line). Lines are kept exactly: libvirt names may hold spaces, even at the ends,
 * but never a newline and never nothing, so only empty lines are dropped.
 */
/**
 * `snapshot-list --domain D` without `--name`: a table of name, creation time
 * (`%Y-%m-%d %H:%M:%S %z`) and state. The name is everything before the last time on the
 * line (a name may hold spaces, even something that looks like a time). null when a line
 * does not read as a row, so the caller falls back to names alone rather than guess.
 */
export function parseSnapshotTable(stdout: string): Array<{ name: string; createdAt: string }> | null {
  const lines = stdout.split('\n');
  if (!/^\s*Name\s+Creation Time\s+State\s*$/.test(lines[0] ?? '') || !/^-+$/.test((lines[1] ?? '').trim())) return null;
  const rows: Array<{ name: string; createdAt: string }> = [];
  for (const line of lines.slice(2)) {
    if (line.trim() === '') continue;
    const match = /^ (.*\S)\s+(\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\s+\S+\s*$/.exec(line);
    if (!match) return null;
    const [, name, year, month, day, hour, minute, second, sign, offsetHours, offsetMinutes] = match;
    const createdAt = new Date(`${year}-${month}-${day}T${hour}:${minute}:${second}${sign}${offsetHours}:${offsetMinutes}`);
    if (Number.isNaN(createdAt.getTime())) return null;
    rows.push({ name: name!, createdAt: createdAt.toISOString() });
  }
  return rows;
}

export function parseNameList(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line !== '');
}

/**
 * Parses a command that prints one name (`domname`, `snapshot-current --name`): the
 * first line, exactly. Returns null when virsh printed nothing.
 */
export function parseSingleName(stdout: string): string | null {
  const name = stdout.split('\n')[0] ?? '';
  return name === '' ? null : name;
}

/**
 * Parses `virsh domstate` (optionally `--reason`): the state words of the first line,
 * e.g. "running", "shut off", "running (from snapshot)".
 */
export function parseDomainState(stdout: string): string {
  const state = stdout.split('\n').find((line) => line.trim() !== '')?.trim();
  if (state === undefined) throw unreadable('domstate', stdout);
  return state;
}

/**
 * Parses `virsh domblklist --domain=D --details`: a table of Type, Device, Target and
 * Source, one row a `<disk>` of the domain XML in its order, then a blank line. The
 * source is everything from the Source column on (a path may hold spaces, even at its
 * start), `-` when the drive is empty (a cdrom without a medium). Columns are found from
 * the header, which virsh pads like the rows; type, device and target never hold spaces.
 */
export function parseDomblklistDetails(stdout: string): DiskSource[] {
  const lines = stdout.split('\n');
  const header = /^ Type +Device +Target +Source$/.exec(lines[0] ?? '');
  if (!header || !/^-+$/.test(lines[1] ?? '')) throw unreadable('domblklist --details', stdout);
  const sourceColumn = (lines[0] ?? '').indexOf('Source');
  const disks: DiskSource[] = [];
  for (const line of lines.slice(2)) {
    if (line === '') continue;
    const match = /^ (\S+) +(\S+) +(\S+) +$/.exec(line.slice(0, sourceColumn));
    const source = line.slice(sourceColumn);
    if (!match || source === '') throw unreadable('domblklist --details', stdout);
    const [, type, device, target] = match;
    disks.push({ type: type!, device: device!, target: target!, source: source === '-' ? null : source });
  }
  return disks;
}

/**
 * The guest's current memory in KiB, from `virsh dominfo`'s "Used memory:" line (the
 * balloon's size while it runs; libvirt before 0.9 wrote "kB" for the same unit).
 */
export function parseDominfoMemoryKiB(stdout: string): number {
  const match = /^Used memory: +(\d+) (?:KiB|kB)$/m.exec(stdout);
  const kib = match ? Number(match[1]) : Number.NaN;
  if (!Number.isSafeInteger(kib)) throw unreadable('dominfo', stdout);
  return kib;
}

// Names like "007" or "5" stay strings (parseTagValue: false), descriptions keep their
// spaces and newlines (trimValues: false) and their numeric character references
// (htmlEntities decodes &#10; as well as the five XML entities, in one pass, so
// "&amp;lt;" stays "&lt;").
const snapshotXmlParser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  processEntities: true,
  htmlEntities: true,
  // Every disk-only snapshot nests one more <backingStore> in the domain XML: a VM with
  // hourly snapshots passes the parser's default limit of 100 in four days.
  maxNestedTags: 100_000,
  isArray: (_tagName, jPath) => jPath === 'domainsnapshot.disks.disk',
});

type XmlNode = Record<string, unknown>;

/**
 * Parses `virsh snapshot-dumpxml` (a `<domainsnapshot>` document). Only the
 * snapshot's own top-level elements are read; the `<domain>` copy inside it has a
 * `<name>` and `<description>` of its own that must not leak into the result.
 */
export function parseSnapshotXml(xml: string): ParsedSnapshot {
  let document: XmlNode;
  try {
    document = snapshotXmlParser.parse(xml) as XmlNode;
  } catch (error) {
    throw unreadable('snapshot-dumpxml', xml, error);
  }
  const root = asNode(document.domainsnapshot);
  const name = root ? textOf(root.name) : null;
  const state = root ? textOf(root.state) : null;
  const creationTime = root ? textOf(root.creationTime)?.trim() : null;
  if (!root || name === null || name === '' || state === null || !creationTime || !/^\d+$/.test(creationTime)) {
    throw unreadable('snapshot-dumpxml', xml);
  }

  const memoryNode = asNode(root.memory);
  const memoryMode = memoryNode ? attributeOf(memoryNode, 'snapshot') : null;
  const disks = asNode(root.disks)?.disk;
  const diskModes = (Array.isArray(disks) ? disks : []).map((disk) => {
    const node = asNode(disk);
    return node ? attributeOf(node, 'snapshot') : null;
  });
  // Same rule as `virsh snapshot-info`: with a <memory> element, any external part
  // makes the snapshot external; snapshots older than libvirt 1.0.1 have no <memory>
  // and were external exactly when they were disk-only.
  const external = memoryNode
    ? memoryMode === 'external' || diskModes.includes('external')
    : state.trim() === 'disk-snapshot';

  return {
    name,
    createdAt: new Date(Number(creationTime) * 1000).toISOString(),
    state: state.trim(),
    location: external ? 'external' : 'internal',
    memory: memoryMode === 'internal' || memoryMode === 'external',
    parent: textOf(asNode(root.parent)?.name),
    description: textOf(root.description),
  };
}

function asNode(value: unknown): XmlNode | null {
  const first = Array.isArray(value) ? (value[0] as unknown) : value;
  return typeof first === 'object' && first !== null ? (first as XmlNode) : null;
}

/** The text of an element: a plain string, or `#text` when it also has attributes. */
function textOf(value: unknown): string | null {
  const first = Array.isArray(value) ? (value[0] as unknown) : value;
  if (typeof first === 'string') return first;
  if (typeof first === 'object' && first !== null) {
    const text = (first as XmlNode)['#text'];
    return typeof text === 'string' ? text : '';
  }
  return null;
}

function attributeOf(node: XmlNode, attribute: string): string | null {
  const value = node[`@_${attribute}`];
  return typeof value === 'string' ? value : null;
}

function unreadable(command: string, output: string, cause?: unknown): SnapbotError {
  return new SnapbotError('INTERNAL', `virsh ${command} printed output snapbot cannot read`, {
    detail: { command, output: output.slice(0, 2000) },
    cause,
  });
}
