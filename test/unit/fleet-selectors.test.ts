import { describe, expect, it } from 'vitest';
import { checkNameTemplate, fleetMatcher, parseFleetSelector, renderNameTemplate } from '../../shared/fleet.js';

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
