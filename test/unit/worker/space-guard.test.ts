import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';
import { createLogger } from '../../../shared/logger.js';
import type { DiskSource } from '../../../worker/hypervisor/hypervisor.js';
import {
  directoriesToMeasure,
  guardSpace,
  judgeSpace,
  type FilesystemSpace,
  type Measurement,
  type SpaceRequest,
} from '../../../worker/space-guard.js';

const IMAGES = '/var/lib/libvirt/images';
const GiB_IN_KIB = 1024 * 1024;

const file = (target: string, source: string): DiskSource => ({ type: 'file', device: 'disk', target, source });

/** A filesystem of `totalGiB` with `freePercent` of it available, in 4 KiB blocks. */
function filesystem(totalGiB: number, freePercent: number): FilesystemSpace {
  const blocks = (totalGiB * 2 ** 30) / 4096;
  return { bsize: 4096, blocks, bavail: Math.round((blocks * freePercent) / 100) };
}

function request(disks: DiskSource[], options: Partial<SpaceRequest> = {}): SpaceRequest {
  return { vm: 'web-01', minFreePercent: 10, guard: "the schedule's space guard", disks, memoryKiB: null, ...options };
}

function measured(entries: Record<string, FilesystemSpace | string>): Map<string, Measurement> {
  return new Map(Object.entries(entries).map(([directory, value]) => [directory, typeof value === 'string' ? { error: value } : { space: value }]));
}

describe('judgeSpace', () => {
  it('lets the snapshot go ahead when every disk keeps the share free, with nothing to note', () => {
    const verdict = judgeSpace(request([file('vda', `${IMAGES}/web-01.qcow2`)]), measured({ [IMAGES]: filesystem(100, 42) }));
    expect(verdict).toMatchObject({ ok: true, note: null, checks: [{ target: 'vda', directory: IMAGES, memoryKiB: 0 }] });
    expect(verdict.checks[0]!.freePercent).toBeCloseTo(42, 3);
  });

  it('refuses with a sentence naming the VM, the disk, the directory, the free share and the threshold', () => {
    const verdict = judgeSpace(request([file('vda', `${IMAGES}/web-01.qcow2`)]), measured({ [IMAGES]: filesystem(100, 4.2) }));
    expect(verdict).toMatchObject({
      ok: false,
      message: "VM web-01: only 4.2 % free under /var/lib/libvirt/images (disk vda); the schedule's space guard wants 10 %. No snapshot was taken.",
    });
  });

  it('passes at exactly the threshold and refuses just under it, never rounding the share up to it', () => {
    const disks = [file('vda', `${IMAGES}/web-01.qcow2`)];
    const at = { bsize: 4096, blocks: 1000, bavail: 100 };
    expect(judgeSpace(request(disks), measured({ [IMAGES]: at })).ok).toBe(true);
    const under = judgeSpace(request(disks), measured({ [IMAGES]: { bsize: 4096, blocks: 100_000, bavail: 9_996 } }));
    expect(under).toMatchObject({ ok: false, message: expect.stringContaining('only 9.9 % free under') });
  });

  it('uses what an unprivileged writer may use (bavail), and any threshold between 0 and 99', () => {
    const disks = [file('vda', `${IMAGES}/web-01.qcow2`)];
    const space = measured({ [IMAGES]: filesystem(100, 50) });
    expect(judgeSpace(request(disks, { minFreePercent: 0 }), space).ok).toBe(true);
    expect(judgeSpace(request(disks, { minFreePercent: 50 }), space).ok).toBe(true);
    expect(judgeSpace(request(disks, { minFreePercent: 50.5 }), space)).toMatchObject({ ok: false, message: expect.stringContaining('wants 50.5 %') });
    expect(judgeSpace(request(disks, { minFreePercent: 99 }), space).ok).toBe(false);
  });

  it("charges a full snapshot's memory to the first disk's filesystem only", () => {
    const disks = [file('vda', `${IMAGES}/web-01.qcow2`), file('vdb', '/srv/data/web-01-data.qcow2')];
    // 100 GiB at 12 % free: 12 GiB. 4 GiB of memory leave 8 %.
    const space = measured({ [IMAGES]: filesystem(100, 12), '/srv/data': filesystem(10, 11) });
    expect(judgeSpace(request(disks), space).ok).toBe(true);
    const verdict = judgeSpace(request(disks, { memoryKiB: 4 * GiB_IN_KIB }), space);
    expect(verdict).toMatchObject({
      ok: false,
      message:
        "VM web-01: only 8.0 % free under /var/lib/libvirt/images (disk vda) once the snapshot saves the guest's 4.0 GiB of memory there; the schedule's space guard wants 10 %. No snapshot was taken.",
    });
    expect(verdict.checks.map((check) => [check.target, check.memoryKiB])).toEqual([['vda', 4 * GiB_IN_KIB], ['vdb', 0]]);
    // The same memory fits when the first disk has room, whatever the second one holds.
    expect(judgeSpace(request(disks, { memoryKiB: 4 * GiB_IN_KIB }), measured({ [IMAGES]: filesystem(100, 30), '/srv/data': filesystem(10, 11) })).ok).toBe(true);
  });

  it('says so when the memory does not fit at all, whatever the threshold', () => {
    const verdict = judgeSpace(
      request([file('vda', `${IMAGES}/web-01.qcow2`)], { memoryKiB: 8 * GiB_IN_KIB, minFreePercent: 0 }),
      measured({ [IMAGES]: filesystem(100, 3.1) }),
    );
    expect(verdict).toMatchObject({
      ok: false,
      message:
        "VM web-01: only 3.0 GiB free under /var/lib/libvirt/images (disk vda), less than the 8.0 GiB of guest memory the snapshot saves there; the schedule's space guard wants 0 %. No snapshot was taken.",
    });
  });

  it('names every disk that is too full', () => {
    const verdict = judgeSpace(
      request([file('vda', `${IMAGES}/web-01.qcow2`), file('vdb', '/srv/data/web-01.qcow2')], { guard: 'the space guard', minFreePercent: 5 }),
      measured({ [IMAGES]: filesystem(100, 2), '/srv/data': filesystem(100, 1.55) }),
    );
    expect(verdict).toMatchObject({
      ok: false,
      message:
        'VM web-01: only 2.0 % free under /var/lib/libvirt/images (disk vda), and 1.5 % free under /srv/data (disk vdb); the space guard wants 5 %. No snapshot was taken.',
    });
  });

  it('skips cdroms and floppies without a word, however full their filesystem', () => {
    const disks: DiskSource[] = [
      file('vda', `${IMAGES}/web-01.qcow2`),
      { type: 'file', device: 'cdrom', target: 'sda', source: '/srv/iso/debian.iso' },
      { type: 'file', device: 'cdrom', target: 'sdb', source: null },
      { type: 'file', device: 'floppy', target: 'fda', source: '/srv/floppy.img' },
    ];
    expect(directoriesToMeasure(disks)).toEqual([IMAGES]);
    expect(judgeSpace(request(disks), measured({ [IMAGES]: filesystem(100, 50), '/srv/iso': filesystem(1, 0), '/srv': filesystem(1, 0) }))).toMatchObject({
      ok: true,
      note: null,
    });
  });

  it('reports block, network and volume disks as not checked instead of failing', () => {
    const disks: DiskSource[] = [
      file('vda', `${IMAGES}/web-01.qcow2`),
      { type: 'block', device: 'disk', target: 'vdb', source: '/dev/vg0/web-data' },
      { type: 'network', device: 'disk', target: 'vdc', source: 'pool/image' },
      { type: 'volume', device: 'disk', target: 'vdd', source: 'vol1' },
    ];
    expect(directoriesToMeasure(disks)).toEqual([IMAGES]);
    expect(judgeSpace(request(disks), measured({ [IMAGES]: filesystem(100, 50) }))).toMatchObject({
      ok: true,
      note: 'The space guard did not check disk vdb (block, not a file), disk vdc (network, not a file), disk vdd (volume, not a file).',
    });
  });

  it('says the memory was not checked when the first disk, which receives it, is not a file', () => {
    const disks: DiskSource[] = [{ type: 'block', device: 'disk', target: 'vda', source: '/dev/vg0/web' }, file('vdb', `${IMAGES}/web-01.qcow2`)];
    const verdict = judgeSpace(request(disks, { memoryKiB: 2 * GiB_IN_KIB }), measured({ [IMAGES]: filesystem(100, 11) }));
    expect(verdict).toMatchObject({
      ok: true,
      note: "The space guard did not check disk vda (block, not a file; nor the room for the guest's 2.0 GiB of memory that goes there).",
    });
    expect(verdict.checks).toEqual([expect.objectContaining({ target: 'vdb', memoryKiB: 0 })]);
  });

  it('reports a directory statfs could not read, or a filesystem without a size, as not checked', () => {
    const disks = [file('vda', `${IMAGES}/web-01.qcow2`), file('vdb', '/proc/odd/web-01.img'), file('vdc', 'relative.qcow2')];
    expect(directoriesToMeasure(disks)).toEqual([IMAGES, '/proc/odd']);
    expect(judgeSpace(request(disks), measured({ [IMAGES]: 'EACCES', '/proc/odd': { bsize: 4096, blocks: 0, bavail: 0 } }))).toMatchObject({
      ok: true,
      note:
        'The space guard did not check disk vda (cannot read the free space under /var/lib/libvirt/images: EACCES), ' +
        'disk vdb (the filesystem under /proc/odd reports no size), disk vdc (not an absolute path).',
    });
  });

  it('measures each directory once, however many disks live in it', () => {
    expect(directoriesToMeasure([file('vda', `${IMAGES}/a.qcow2`), file('vdb', `${IMAGES}/b.qcow2`), file('vdc', '/srv/c.qcow2')])).toEqual([IMAGES, '/srv']);
  });
});

describe('guardSpace', () => {
  const logger = createLogger('test', 'silent');
  const disks = [file('vda', `${IMAGES}/web-01.qcow2`)];

  function host(memoryKiB = 2 * GiB_IN_KIB) {
    const calls: string[] = [];
    return {
      calls,
      hypervisor: {
        diskSources: async (uuid: string) => (calls.push(`domblklist ${uuid}`), disks),
        memoryKiB: async (uuid: string) => (calls.push(`dominfo ${uuid}`), memoryKiB),
      },
    };
  }

  it('asks libvirt for the memory only when the snapshot saves it, and measures the image directory', async () => {
    const { hypervisor, calls } = host();
    const measuredDirectories: string[] = [];
    const statfs = async (directory: string) => (measuredDirectories.push(directory), filesystem(100, 50));
    const base = { hypervisor, statfs, logger, uuid: 'u-1', request: { vm: 'web-01', minFreePercent: 10, guard: 'the space guard' } };
    expect(await guardSpace({ ...base, savesMemory: false })).toBeNull();
    expect(calls).toEqual(['domblklist u-1']);
    expect(await guardSpace({ ...base, savesMemory: true })).toBeNull();
    expect(calls).toEqual(['domblklist u-1', 'domblklist u-1', 'dominfo u-1']);
    expect(measuredDirectories).toEqual([IMAGES, IMAGES]);
  });

  it('throws a permanent NO_SPACE with the sentence when a filesystem is too full', async () => {
    const { hypervisor } = host();
    const error = await guardSpace({
      hypervisor,
      statfs: async () => filesystem(100, 4.2),
      logger,
      uuid: 'u-1',
      request: { vm: 'web-01', minFreePercent: 10, guard: "the schedule's space guard" },
      savesMemory: false,
    }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SnapbotError);
    expect(error).toMatchObject({
      code: 'NO_SPACE',
      permanent: true,
      message: "VM web-01: only 4.2 % free under /var/lib/libvirt/images (disk vda); the schedule's space guard wants 10 %. No snapshot was taken.",
    });
  });

  it('turns a statfs failure into a note, not a failure', async () => {
    const { hypervisor } = host();
    const statfs = async () => {
      throw Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    };
    const note = await guardSpace({ hypervisor, statfs, logger, uuid: 'u-1', request: { vm: 'web-01', minFreePercent: 10, guard: 'the space guard' }, savesMemory: false });
    expect(note).toBe('The space guard did not check disk vda (cannot read the free space under /var/lib/libvirt/images: ENOENT).');
  });
});
