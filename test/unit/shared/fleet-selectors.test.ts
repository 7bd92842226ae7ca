import { describe, expect, it } from 'vitest';
import { checkNameTemplate, fleetMatcher, parseFleetSelector, renderNameTemplate } from '../../../shared/fleet.js';

const inventory = [
  ['kvm-1', 'web-01'],
  ['kvm-1', 'web-canary'],
  ['kvm-1', 'db-01'],
  ['kvm-2', 'web-02'],
  ['kvm-2', 'db-02'],
  ['lab-9', 'web-03'],
] as const;

function select(text: string): string[] {
  const matches = fleetMatcher(parseFleetSelector(text));
  return inventory.filter(([host, vm]) => matches(host, vm)).map(([host, vm]) => `${vm}@${host}`);
}

describe('fleet selectors', () => {
  it.each([
    ['all', ['web-01@kvm-1', 'web-canary@kvm-1', 'db-01@kvm-1', 'web-02@kvm-2', 'db-02@kvm-2', 'web-03@lab-9']],
    ['web-*', ['web-01@kvm-1', 'web-canary@kvm-1', 'web-02@kvm-2', 'web-03@lab-9']],
    ['web-* !web-canary', ['web-01@kvm-1', 'web-02@kvm-2', 'web-03@lab-9']],
    ['web-*,db-01', ['web-01@kvm-1', 'web-canary@kvm-1', 'db-01@kvm-1', 'web-02@kvm-2', 'web-03@lab-9']],
    ['host:kvm-*', ['web-01@kvm-1', 'web-canary@kvm-1', 'db-01@kvm-1', 'web-02@kvm-2', 'db-02@kvm-2']],
    ['web-* host:kvm-*', ['web-01@kvm-1', 'web-canary@kvm-1', 'web-02@kvm-2']],
    ['all !host:kvm-1 !db-*', ['web-02@kvm-2', 'web-03@lab-9']],
    ['HOST:lab-?', ['web-03@lab-9']],
    ['nothing-matches', []],
  ])('%s', (text, expected) => {
    expect(select(text)).toEqual(expected);
  });

  it.each(['', '   ', '!web-01', 'host:', '!', 'a\u0007b'])('refuses %j with VALIDATION', (text) => {
    expect(() => parseFleetSelector(text)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });

  it('treats regular-expression characters literally', () => {
    const matches = fleetMatcher(parseFleetSelector('web.(1)+'));
    expect(matches('h', 'web.(1)+')).toBe(true);
    expect(matches('h', 'webx(1)')).toBe(false);
  });
});

describe('name templates', () => {
  const at = new Date('2026-11-28T04:05:06.789Z');

  it('fills {vm} {host} {date} {time} (UTC), leaving other text alone', () => {
    expect(renderNameTemplate('pre-rollout-{date}', { vm: 'web-01', host: 'kvm-1', at })).toBe('pre-rollout-20261128');
    expect(renderNameTemplate('{vm}@{host}-{date}-{time}', { vm: 'web-01', host: 'kvm-1', at })).toBe('web-01@kvm-1-20261128-040506');
    expect(renderNameTemplate('plain', { vm: 'v', host: 'h', at })).toBe('plain');
  });

  it('refuses unknown fields before anything is planned', () => {
    expect(() => checkNameTemplate('x-{dtae}')).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    expect(() => checkNameTemplate('x-{}')).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    expect(() => checkNameTemplate('x-{vm}-{host}-{date}-{time}')).not.toThrow();
  });
});

/** The VALIDATION message parseFleetSelector gives, or 'valid'. */
function refusal(text: string): string {
  try {
    parseFleetSelector(text);
    return 'valid';
  } catch (error) {
    return (error as Error).message;
  }
}

describe('what a selector is read as', () => {
  it('separates words by blanks and commas, any number of them, and keeps a normalised text', () => {
    expect(parseFleetSelector(' web-*, ,db-01\t!web-canary  host:kvm-1 ,\n!host:lab-* ')).toEqual({
      vms: ['web-*', 'db-01'],
      hosts: ['kvm-1'],
      excludeVms: ['web-canary'],
      excludeHosts: ['lab-*'],
      text: 'web-* db-01 !web-canary host:kvm-1 !host:lab-*',
    });
  });

  it('reads all in any case as every VM, and only when it stands alone', () => {
    expect(parseFleetSelector('ALL')).toEqual({ vms: [], hosts: [], excludeVms: [], excludeHosts: [], text: 'ALL' });
    expect(parseFleetSelector('all-web')).toMatchObject({ vms: ['all-web'] });
    expect(parseFleetSelector('all !all')).toMatchObject({ vms: [], excludeVms: ['all'] });
    expect(parseFleetSelector('host:all')).toMatchObject({ vms: [], hosts: ['all'] });
  });

  it('reads a host: prefix in any case, and keeps the glob after it as typed', () => {
    expect(parseFleetSelector('Host:KVM-1')).toMatchObject({ hosts: ['KVM-1'], vms: [] });
    expect(parseFleetSelector('!HOST:Lab all')).toMatchObject({ excludeHosts: ['Lab'], excludeVms: [] });
    expect(parseFleetSelector('myhost:x')).toMatchObject({ vms: ['myhost:x'], hosts: [] });
  });

  it('takes a glob of 200 characters, and refuses one of 201', () => {
    expect(parseFleetSelector('v'.repeat(200)).vms).toEqual(['v'.repeat(200)]);
    expect(parseFleetSelector(`host:${'h'.repeat(200)}`).hosts).toEqual(['h'.repeat(200)]);
    expect(refusal('v'.repeat(201))).toBe(`Selector word '${'v'.repeat(201)}' is not a valid glob.`);
  });

  it.each(['a\u0000b', 'a\u001fb', 'a\u007fb', 'host:a\u0001'])('refuses a control character in %j', (text) => {
    expect(refusal(text)).toBe(`Selector word '${text}' is not a valid glob.`);
  });

  it('accepts characters next to the control ranges', () => {
    expect(parseFleetSelector('a~b a\u0080b').vms).toEqual(['a~b', 'a\u0080b']);
  });

  it('says what is wrong with a selector it refuses', () => {
    expect(refusal(' , ')).toBe("The target selector is empty: say 'all', VM globs like 'web-*', or 'host:<id>'.");
    expect(refusal('web-* !host:')).toBe("Selector word '!host:' has nothing after it.");
    expect(refusal('!')).toBe("Selector word '!' has nothing after it.");
    expect(refusal('!web-01 !host:kvm-1')).toBe(
      "Selector '!web-01 !host:kvm-1' only excludes; add 'all', VM globs or 'host:<id>' to say what to include.",
    );
  });

  it('accepts a selector that names only hosts, or only VMs', () => {
    expect(refusal('host:kvm-1')).toBe('valid');
    expect(refusal('web-01')).toBe('valid');
    expect(refusal('all !web-01')).toBe('valid');
  });
});

describe('what a selector matches', () => {
  it('needs both a VM glob and a host glob to match when it has both', () => {
    const matches = fleetMatcher(parseFleetSelector('web-* host:kvm-1'));
    expect(matches('kvm-1', 'web-01')).toBe(true);
    expect(matches('kvm-2', 'web-01')).toBe(false);
    expect(matches('kvm-1', 'db-01')).toBe(false);
  });

  it('matches any one of several VM globs, and any one of several host globs', () => {
    const matches = fleetMatcher(parseFleetSelector('web-* db-* host:kvm-1 host:kvm-2'));
    expect(matches('kvm-2', 'db-01')).toBe(true);
    expect(matches('kvm-1', 'web-01')).toBe(true);
    expect(matches('kvm-3', 'web-01')).toBe(false);
  });

  it('leaves out what any one exclusion names', () => {
    const matches = fleetMatcher(parseFleetSelector('all !web-canary !db-* !host:kvm-9 !host:lab-*'));
    expect(matches('kvm-1', 'web-01')).toBe(true);
    expect(matches('kvm-1', 'db-01')).toBe(false);
    expect(matches('kvm-1', 'web-canary')).toBe(false);
    expect(matches('lab-1', 'web-01')).toBe(false);
    expect(matches('kvm-9', 'web-01')).toBe(false);
  });

  it('matches VM names and host ids whole, not in part', () => {
    const matches = fleetMatcher(parseFleetSelector('web host:kvm'));
    expect(matches('kvm', 'web')).toBe(true);
    expect(matches('kvm', 'web-01')).toBe(false);
    expect(matches('kvm-1', 'web')).toBe(false);
  });
});

describe('name templates, details', () => {
  const at = new Date('2026-11-28T04:05:06.789Z');

  it('fills every occurrence of a field, and leaves unknown braces alone', () => {
    expect(renderNameTemplate('{vm}-{vm}-{other}', { vm: 'web', host: 'kvm', at })).toBe('web-web-{other}');
    expect(renderNameTemplate('{host}', { vm: 'web', host: 'kvm-1', at })).toBe('kvm-1');
    expect(renderNameTemplate('{time}{date}', { vm: 'web', host: 'kvm-1', at })).toBe('04050620261128');
  });

  it('names the unknown field and the template', () => {
    expect(() => checkNameTemplate('pre-{vm}-{stamp}')).toThrow(
      "Unknown field {stamp} in name template 'pre-{vm}-{stamp}'; use {vm}, {host}, {date} or {time}.",
    );
    expect(() => checkNameTemplate('x-{VM}')).toThrow('Unknown field {VM}');
    expect(() => checkNameTemplate('x-{vm }')).toThrow('Unknown field {vm }');
  });

  it('accepts text without fields, and stray braces that hold no field', () => {
    expect(() => checkNameTemplate('plain')).not.toThrow();
    expect(() => checkNameTemplate('a{b')).not.toThrow();
    expect(() => checkNameTemplate('a}b{')).not.toThrow();
  });
});
