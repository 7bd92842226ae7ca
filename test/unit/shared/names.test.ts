import { describe, expect, it, vi } from 'vitest';
import { defaultSnapshotName, descriptionSchema, hostIdSchema, snapshotNameSchema, uuidSchema, vmNameSchema } from '../../../shared/names.js';
import { LITERAL_NAMES, REFUSED_NAMES } from '../../fixtures/names-table.js';


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

/** The first message a schema gives for a value, or 'valid'. */
function verdict(schema: { safeParse(value: unknown): { success: boolean; error?: { issues: Array<{ message: string }> } } }, value: unknown): string {
  const result = schema.safeParse(value);
  return result.success ? 'valid' : (result.error?.issues[0]?.message ?? '?');
}

describe('what a refused name is told', () => {
  it.each([
    [undefined, 'VM name is required'],
    ['', 'VM name must not be empty'],
    ['x'.repeat(201), 'VM name must be at most 200 characters'],
    ['a/b', "VM name must not contain '/'"],
    ['a\u0000b', 'VM name must not contain control characters'],
    [' web-01', 'VM name must not start or end with spaces'],
    ['web-01 ', 'VM name must not start or end with spaces'],
  ])('VM name %j: %s', (name, message) => {
    expect(verdict(vmNameSchema, name)).toBe(message);
  });

  it.each([
    [undefined, 'snapshot name is required'],
    ['', 'snapshot name must not be empty'],
    ['x'.repeat(129), 'snapshot name must be at most 128 characters'],
    ['a\u001fb', 'snapshot name must not contain control characters'],
    ['\tpre', 'snapshot name must not contain control characters'],
    ['pre ', 'snapshot name must not start or end with spaces'],
    ['.', "snapshot name must not be '.' or '..'"],
    ['..', "snapshot name must not be '.' or '..'"],
  ])('snapshot name %j: %s', (name, message) => {
    expect(verdict(snapshotNameSchema, name)).toBe(message);
  });

  it.each([
    ['', 'host id must not be empty'],
    ['k'.repeat(64), 'host id must be at most 63 characters'],
    ['kvm:1', 'host id may contain only letters, digits, ".", "_" and "-"'],
  ])('host id %j: %s', (id, message) => {
    expect(verdict(hostIdSchema, id)).toBe(message);
  });
});

describe('name lengths', () => {
  it('takes VM names up to 200 characters and snapshot names up to 128', () => {
    expect(verdict(vmNameSchema, 'v'.repeat(200))).toBe('valid');
    expect(verdict(snapshotNameSchema, 's'.repeat(128))).toBe('valid');
    expect(verdict(hostIdSchema, 'k'.repeat(63))).toBe('valid');
    expect(verdict(vmNameSchema, 'v')).toBe('valid');
  });
});

describe('control characters in names', () => {
  it.each(['\u0000', '\u0007', '\u001f', '\u007f', '\u0085', '\u009f'])('refuses U+%s', (character) => {
    expect(verdict(vmNameSchema, `a${character}b`)).toBe('VM name must not contain control characters');
    expect(verdict(snapshotNameSchema, `a${character}b`)).toBe('snapshot name must not contain control characters');
  });

  it('accepts printable characters next to the control ranges', () => {
    for (const name of ['a b', 'a~b', 'a\u00a0b', 'a\u00e9b']) {
      expect(verdict(vmNameSchema, name)).toBe('valid');
      expect(verdict(snapshotNameSchema, name)).toBe('valid');
    }
  });

  it("accepts dots inside longer snapshot names", () => {
    for (const name of ['...', '.hidden', 'a..b']) expect(verdict(snapshotNameSchema, name)).toBe('valid');
  });
});

describe('host id characters', () => {
  it.each(['kvm-01', 'KVM_01', 'a', '0', 'kvm.dc1.example', 'a-', 'a_'])('accepts %j', (id) => {
    expect(verdict(hostIdSchema, id)).toBe('valid');
  });

  it.each(['-kvm', '.kvm', '_kvm', 'kvm 1', 'kvm/1', 'kvm:1', 'kvm-ü', 'kvm\n'])('refuses %j', (id) => {
    expect(verdict(hostIdSchema, id)).not.toBe('valid');
  });
});

describe('snapshot descriptions', () => {
  it('accepts text with tabs and newlines, up to 1000 characters', () => {
    expect(verdict(descriptionSchema, '')).toBe('valid');
    expect(verdict(descriptionSchema, 'before the upgrade\n\tsee ticket 42')).toBe('valid');
    expect(verdict(descriptionSchema, 'd'.repeat(1000))).toBe('valid');
  });

  it('refuses a description over 1000 characters', () => {
    expect(verdict(descriptionSchema, 'd'.repeat(1001))).toBe('description must be at most 1000 characters');
  });

  it.each(['\u0000', '\u0008', '\u000b', '\u000d', '\u001b', '\u001f', '\u007f'])('refuses control character %j', (character) => {
    expect(verdict(descriptionSchema, `before${character}after`)).toBe('description must not contain control characters');
  });
});

describe('UUIDs', () => {
  it('accepts a libvirt UUID in either case', () => {
    expect(verdict(uuidSchema, 'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff')).toBe('valid');
    expect(verdict(uuidSchema, 'B84E1AD0-2D70-4BBB-856D-A73DD78E5EFF')).toBe('valid');
  });

  it.each([
    'b84e1ad0-2d70-4bbb-856d-a73dd78e5ef',
    'b84e1ad0-2d70-4bbb-856d-a73dd78e5effa',
    'xb84e1ad0-2d70-4bbb-856d-a73dd78e5eff',
    'b84e1ad-02d70-4bbb-856d-a73dd78e5eff',
    'b84e1ad0-2d7-04bbb-856d-a73dd78e5eff',
    'b84e1ad0-2d70-4bb-b856d-a73dd78e5eff',
    'b84e1ad0-2d70-4bbb-856-da73dd78e5eff',
    'g84e1ad0-2d70-4bbb-856d-a73dd78e5eff',
    'b84e1ad02d704bbb856da73dd78e5eff',
    'web-01',
  ])('refuses %j', (value) => {
    expect(verdict(uuidSchema, value)).toBe('not a UUID');
  });
});

describe('default snapshot names, now', () => {
  it('stamps the current UTC time when no time is given', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(new Date('2027-01-02T03:04:05.000Z'));
      expect(defaultSnapshotName()).toBe('snap-20270102-030405');
    } finally {
      vi.useRealTimers();
    }
  });
});
