import { describe, expect, it, vi } from 'vitest';
import { codePointLabel, defaultSnapshotName, descriptionSchema, findHiddenCharacter, hostIdSchema, revealHiddenCharacters, snapshotNameSchema, uuidSchema, vmNameSchema } from '../../../shared/names.js';
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
    ['.', "snapshot name must not start with '.' (libvirt refuses it)"],
    ['..', "snapshot name must not start with '.' (libvirt refuses it)"],
    ['.hidden', "snapshot name must not start with '.' (libvirt refuses it)"],
    ['é'.repeat(124), 'snapshot name must be at most 247 bytes in UTF-8 (libvirt stores it as a file name)'],
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

  it('accepts dots after the first character', () => {
    for (const name of ['a..b', 'v1.2.3', 'a.']) expect(verdict(snapshotNameSchema, name)).toBe('valid');
  });

  it('accepts up to 247 UTF-8 bytes within the 128 characters (libvirt keeps NAME.xml.new, a 255-byte file name)', () => {
    expect(verdict(snapshotNameSchema, 'é'.repeat(123))).toBe('valid');
    expect(verdict(snapshotNameSchema, `a${'é'.repeat(123)}`)).toBe('valid');
    expect(verdict(snapshotNameSchema, `ab${'é'.repeat(123)}`)).not.toBe('valid');
    expect(verdict(snapshotNameSchema, '📸'.repeat(62))).not.toBe('valid');
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

describe('hidden characters in names and descriptions', () => {
  it.each([
    ['\u200b', 'U+200B (zero width space)'],
    ['\u200c', 'U+200C (zero width non-joiner)'],
    ['\u200d', 'U+200D (zero width joiner)'],
    ['\u2060', 'U+2060 (word joiner)'],
    ['\u2063', 'U+2063'],
    ['\ufeff', 'U+FEFF (zero width no-break space)'],
    ['\u00ad', 'U+00AD (soft hyphen)'],
    ['\u180e', 'U+180E (Mongolian vowel separator)'],
    ['\u034f', 'U+034F (combining grapheme joiner)'],
    ['\u3164', 'U+3164'],
    ['\u{e0041}', 'U+E0041'],
    ['\u2028', 'U+2028 (line separator)'],
    ['\u202a', 'U+202A (left-to-right embedding)'],
    ['\u202e', 'U+202E (right-to-left override)'],
    ['\u2066', 'U+2066 (left-to-right isolate)'],
    ['\u2069', 'U+2069 (pop directional isolate)'],
    ['\u200e', 'U+200E (left-to-right mark)'],
    ['\u200f', 'U+200F (right-to-left mark)'],
    ['\u061c', 'U+061C (Arabic letter mark)'],
  ])('refuses %j, naming it as %s', (character, label) => {
    const why = `must not contain invisible or direction-changing characters: ${label}`;
    expect(verdict(vmNameSchema, `baseline${character}`)).toBe(`VM name ${why}`);
    expect(verdict(snapshotNameSchema, `base${character}line`)).toBe(`snapshot name ${why}`);
    expect(verdict(descriptionSchema, `${character}before the upgrade`)).toBe(`description ${why}`);
  });

  it('names the first hidden character when there are several', () => {
    expect(verdict(vmNameSchema, 'a\u202eb\u200bc')).toBe('VM name must not contain invisible or direction-changing characters: U+202E (right-to-left override)');
  });

  it('keeps emoji whole: variation selectors, and joiners between two emoji', () => {
    for (const name of ['love-❤️', 'dev-👩‍💻', 'team-👩🏽‍💻', 'ok-✔︎']) {
      expect(verdict(vmNameSchema, name)).toBe('valid');
      expect(verdict(snapshotNameSchema, name)).toBe('valid');
      expect(verdict(descriptionSchema, name)).toBe('valid');
    }
  });

  it('refuses a joiner that joins nothing visible', () => {
    for (const name of ['a\u200d💻', '👩\u200db', '👩\u200d']) expect(verdict(vmNameSchema, name)).toMatch(/U\+200D/);
  });

  it('accepts right-to-left scripts and visible blanks', () => {
    for (const name of ['גיבוי-1', 'نسخة', 'a\u00a0b', 'a\u3000b']) expect(verdict(snapshotNameSchema, name)).toBe('valid');
  });
});

describe('revealHiddenCharacters', () => {
  it('writes hidden and control characters out as <U+XXXX>', () => {
    expect(revealHiddenCharacters('baseline\u200b')).toBe('baseline<U+200B>');
    expect(revealHiddenCharacters('\u202eexe.txt')).toBe('<U+202E>exe.txt');
    expect(revealHiddenCharacters('tag\u{e0041}')).toBe('tag<U+E0041>');
    expect(revealHiddenCharacters('bell\u0007 and \u009b')).toBe('bell<U+0007> and <U+009B>');
  });

  it('leaves visible text, tabs, newlines and emoji as they are', () => {
    for (const text of ['web-01', 'ünïcødé-快照', 'line 1\n\tline 2', 'dev-👩‍💻 ❤️', '']) expect(revealHiddenCharacters(text)).toBe(text);
  });

  it('reveals every character the name rules refuse as hidden, and nothing they accept', () => {
    const samples = [0x00ad, 0x034f, 0x061c, 0x180e, 0x200b, 0x200c, 0x200e, 0x200f, 0x202a, 0x202e, 0x2060, 0x2064, 0x2066, 0x2069, 0x2028, 0xfeff, 0xfff9, 0xe0001, 0xe007f]
      .map((code) => String.fromCodePoint(code));
    for (const character of samples) {
      expect(findHiddenCharacter(`a${character}b`), codePointLabel(character)).toBe(character);
      expect(revealHiddenCharacters(`a${character}b`)).toBe(`a<${codePointLabel(character)}>b`);
    }
    for (const character of ['a', ' ', '\u00a0', '\u2010', '\ufe0f', 'é', '快']) expect(revealHiddenCharacters(character)).toBe(character);
  });
});
