import { describe, expect, it } from 'vitest';
import { defaultSnapshotName, hostIdSchema, snapshotNameSchema, vmNameSchema } from '../../shared/names.js';
import { LITERAL_NAMES, REFUSED_NAMES } from '../fixtures/names-table.js';


describe('snapshot names', () => {
  it.each(LITERAL_NAMES)('accepts %j as a literal name', (name) => {
    expect(snapshotNameSchema.safeParse(name).success).toBe(true);
  });

  it.each(REFUSED_NAMES)('refuses %j', (name) => {
    expect(snapshotNameSchema.safeParse(name).success).toBe(false);
  });

  it('says why a name is refused', () => {
    const result = snapshotNameSchema.safeParse('a/b');
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.message).toBe("snapshot name must not contain '/'");
  });
});

describe('VM names', () => {
  it('accepts names that look like options or numbers', () => {
    for (const name of ['--help', '5', 'web 01']) expect(vmNameSchema.safeParse(name).success).toBe(true);
  });

  it('refuses slashes and control characters', () => {
    for (const name of ['a/b', 'a\u0007b', '']) expect(vmNameSchema.safeParse(name).success).toBe(false);
  });
});

describe('host ids', () => {
  it('accepts hostname characters only, since they become queue names', () => {
    expect(hostIdSchema.safeParse('kvm-01.dc1').success).toBe(true);
    for (const id of ['a:b', 'a b', '-x', '']) expect(hostIdSchema.safeParse(id).success).toBe(false);
  });
});

describe('default snapshot names', () => {
  it('stamps the UTC time', () => {
    expect(defaultSnapshotName(new Date('2026-11-28T00:46:12.345Z'))).toBe('snap-20261128-004612');
  });
});
