import { statfs } from 'node:fs/promises';
import { dirname, isAbsolute } from 'node:path';
import { SnapbotError } from '../shared/errors.js';
import type { Logger } from '../shared/logger.js';
import type { DiskSource, Hypervisor } from './hypervisor/hypervisor.js';

/**
 * The space guard a create job may carry (scheduled creates do): before taking the
 * snapshot, the worker measures the filesystem under each of the VM's file-backed disks
 * and refuses with NO_SPACE, creating nothing, when less than `minFreePercent` of it is
 * free. A full snapshot of a running VM saves the guest's memory into its first disk's
 * image (internal snapshot), so that filesystem must keep the share free after the memory.
 */

/** What the guard reads of statfs(2): the size and what an unprivileged writer may still use, in blocks of `bsize` bytes. */
export interface FilesystemSpace {
  bsize: number;
  blocks: number;
  bavail: number;
}

/** Measures the filesystem a directory is on. */
export type StatFilesystem = (directory: string) => Promise<FilesystemSpace>;

/** Node's statfs: the worker's default. */
export const statFilesystem: StatFilesystem = async (directory) => {
  const { bsize, blocks, bavail } = await statfs(directory);
  return { bsize, blocks, bavail };
};

/** One directory's statfs, or why it could not be read (an errno code such as EACCES). */
export type Measurement = { space: FilesystemSpace } | { error: string };

export interface SpaceRequest {
  /** The VM's name, for the sentence. */
  vm: string;
  minFreePercent: number;
  /** Who asks, for the sentence: "the schedule's space guard". */
  guard: string;
  /** `domblklist --details` rows, in the domain XML's order. */
  disks: readonly DiskSource[];
  /** The guest memory the snapshot saves into its first disk; null when it saves none. */
  memoryKiB: number | null;
}

/** A file-backed disk and the free share of the filesystem under it (after the memory, for the disk that receives it). */
export interface DiskCheck {
  target: string;
  directory: string;
  freePercent: number;
  memoryKiB: number;
}

export type SpaceVerdict =
  | { ok: true; checks: DiskCheck[]; note: string | null }
  | { ok: false; checks: DiskCheck[]; message: string };

/** The disks whose filesystem the guard measures: file-backed ones, by their image's directory. */
export function directoriesToMeasure(disks: readonly DiskSource[]): string[] {
  const directories = new Set<string>();
  for (const disk of disks) {
    const directory = imageDirectory(disk);
    if (directory !== null) directories.add(directory);
  }
  return [...directories];
}

/**
 * The decision, from the disks, the statfs of their directories and the memory to save:
 * ok (with a note naming what could not be checked), or the NO_SPACE sentence. cdroms and
 * floppies are never checked (a snapshot writes nothing there); block, network and other
 * non-file disks, and directories statfs could not read, are named as not checked rather
 * than failing the snapshot.
 */
export function judgeSpace(request: SpaceRequest, measurements: ReadonlyMap<string, Measurement>): SpaceVerdict {
  const checks: DiskCheck[] = [];
  const shortfalls: string[] = [];
  const unchecked: string[] = [];
  const disks = request.disks.filter((disk) => disk.device !== 'cdrom' && disk.device !== 'floppy');
  // QEMU writes an internal snapshot's memory state into the first disk's image.
  const memoryDisk = request.memoryKiB === null ? undefined : disks[0];
  if (request.memoryKiB !== null && memoryDisk === undefined) unchecked.push(`room for the guest's ${formatKiB(request.memoryKiB)} of memory (the VM has no disk)`);

  for (const disk of disks) {
    const directory = imageDirectory(disk);
    const memoryKiB = disk === memoryDisk ? (request.memoryKiB ?? 0) : 0;
    const memoryNote = memoryKiB > 0 ? `; nor the room for the guest's ${formatKiB(memoryKiB)} of memory that goes there` : '';
    if (directory === null) {
      const why = disk.source === null ? 'no source' : disk.type === 'file' ? 'not an absolute path' : `${disk.type}, not a file`;
      unchecked.push(`disk ${disk.target} (${why}${memoryNote})`);
      continue;
    }
    const measured = measurements.get(directory);
    if (measured === undefined || 'error' in measured) {
      unchecked.push(`disk ${disk.target} (cannot read the free space under ${directory}: ${measured?.error ?? 'not measured'}${memoryNote})`);
      continue;
    }
    const { bsize, blocks, bavail } = measured.space;
    if (!(blocks > 0 && bsize > 0)) {
      unchecked.push(`disk ${disk.target} (the filesystem under ${directory} reports no size${memoryNote})`);
      continue;
    }
    const availableBytes = bavail * bsize;
    const memoryBytes = memoryKiB * 1024;
    const freePercent = ((availableBytes - memoryBytes) / (blocks * bsize)) * 100;
    checks.push({ target: disk.target, directory, freePercent, memoryKiB });
    if (freePercent >= request.minFreePercent) continue;
    if (memoryBytes === 0) {
      shortfalls.push(`${formatPercent(freePercent)} % free under ${directory} (disk ${disk.target})`);
    } else if (availableBytes < memoryBytes) {
      shortfalls.push(
        `${formatBytes(availableBytes)} free under ${directory} (disk ${disk.target}), less than the ${formatKiB(memoryKiB)} of guest memory the snapshot saves there`,
      );
    } else {
      shortfalls.push(
        `${formatPercent(freePercent)} % free under ${directory} (disk ${disk.target}) once the snapshot saves the guest's ${formatKiB(memoryKiB)} of memory there`,
      );
    }
  }

  if (shortfalls.length > 0) {
    const message = `VM ${request.vm}: only ${shortfalls.join(', and ')}; ${request.guard} wants ${request.minFreePercent} %. No snapshot was taken.`;
    return { ok: false, checks, message };
  }
  const note = unchecked.length > 0 ? `The space guard did not check ${unchecked.join(', ')}.` : null;
  return { ok: true, checks, note };
}

export interface GuardSpaceOptions {
  hypervisor: Pick<Hypervisor, 'diskSources' | 'memoryKiB'>;
  statfs: StatFilesystem;
  logger: Logger;
  uuid: string;
  request: Omit<SpaceRequest, 'disks' | 'memoryKiB'>;
  /** Whether the snapshot saves the guest's memory (a full snapshot of a running VM). */
  savesMemory: boolean;
}

/**
 * Runs the guard against the host: `domblklist`, `dominfo` when memory is saved, statfs
 * of each image directory. Throws NO_SPACE (permanent: retrying will not free space)
 * when a filesystem is too full; otherwise returns a note on what was not checked.
 */
export async function guardSpace(options: GuardSpaceOptions): Promise<string | null> {
  const { hypervisor, uuid } = options;
  const [disks, memoryKiB] = await Promise.all([
    hypervisor.diskSources(uuid),
    options.savesMemory ? hypervisor.memoryKiB(uuid) : Promise.resolve(null),
  ]);
  const directories = directoriesToMeasure(disks);
  const measured = await Promise.all(directories.map((directory) => measure(options.statfs, directory)));
  const verdict = judgeSpace({ ...options.request, disks, memoryKiB }, new Map(directories.map((directory, index) => [directory, measured[index]!])));
  const { checks } = verdict;
  if (!verdict.ok) {
    options.logger.warn({ minFreePercent: options.request.minFreePercent, checks }, 'space guard: too little free space; not creating');
    throw new SnapbotError('NO_SPACE', verdict.message, { permanent: true, detail: { minFreePercent: options.request.minFreePercent, checks } });
  }
  options.logger.info({ minFreePercent: options.request.minFreePercent, checks, unchecked: verdict.note }, 'space guard: enough free space');
  return verdict.note;
}

async function measure(stat: StatFilesystem, directory: string): Promise<Measurement> {
  try {
    return { space: await stat(directory) };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException | undefined)?.code;
    return { error: typeof code === 'string' ? code : error instanceof Error ? error.message : String(error) };
  }
}

/** The directory holding a file-backed disk's image; null for anything statfs cannot speak for. */
function imageDirectory(disk: DiskSource): string | null {
  if (disk.device === 'cdrom' || disk.device === 'floppy') return null;
  if (disk.type !== 'file' || disk.source === null || !isAbsolute(disk.source)) return null;
  return dirname(disk.source);
}

/** Rounded down, so a share just under the threshold never reads as equal to it. */
function formatPercent(percent: number): string {
  return (Math.floor(Math.max(percent, 0) * 10) / 10).toFixed(1);
}

function formatKiB(kib: number): string {
  return formatBytes(kib * 1024);
}

function formatBytes(bytes: number): string {
  const floorTo = (value: number) => Math.floor(value * 10) / 10;
  if (bytes >= 2 ** 30) return `${floorTo(bytes / 2 ** 30).toFixed(1)} GiB`;
  if (bytes >= 2 ** 20) return `${Math.floor(bytes / 2 ** 20)} MiB`;
  return `${Math.floor(bytes / 1024)} KiB`;
}
