import { describe, expect, it } from 'vitest';
import { fleetMatcher, parseFleetSelector } from '../../../shared/fleet.js';
import { compileGlob, matchesAnyGlob, matchesGlob } from '../../../shared/glob.js';

describe('matchesGlob', () => {
  it.each([
    ['web-*', 'web-01', true],
    ['web-*', 'web-', true],
    ['web-*', 'web', false],
    ['*-01', 'web-01', true],
    ['*', '', true],
    ['', '', true],
    ['', 'a', false],
    ['?', '', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'aXbYcZ', false],
    ['a*b*c', 'acb', false],
    ['*a*a*a', 'aaa', true],
    ['*a*a*a', 'aa', false],
    ['*ab', 'aab', true],
    ['a*ab', 'aab', true],
    ['??', 'ab', true],
    ['??', 'abc', false],
    ['*?', '', false],
    ['*?', 'x', true],
    ['.*', 'abc', false],
    ['.*', '.abc', true],
  ])('%j against %j: %s', (glob, value, expected) => {
    expect(matchesGlob(value, glob)).toBe(expected);
  });

  it('is case-sensitive', () => {
    expect(matchesGlob('Web-01', 'web-*')).toBe(false);
    expect(matchesGlob('WEB-01', 'WEB-??')).toBe(true);
  });

  it('reads ? as one code point, even outside the Basic Multilingual Plane', () => {
    expect(matchesGlob('db-😀', 'db-?')).toBe(true);
    expect(matchesGlob('😀😀', '?')).toBe(false);
    expect(matchesGlob('😀😀', '??')).toBe(true);
    expect(matchesGlob('ünïcødé', 'ü?ï*é')).toBe(true);
  });

  it('compares characters exactly: no case folding or normalisation of composed letters', () => {
    expect(matchesGlob('e\u0301', '\u00e9')).toBe(false);
    expect(matchesGlob('e\u0301', '??')).toBe(true);
  });

  it('reads ** as *, and lets * match an empty segment', () => {
    expect(matchesGlob('a-b', 'a**b')).toBe(true);
    expect(matchesGlob('ab', 'a**b')).toBe(true);
    expect(matchesGlob('a--b', 'a-*-b')).toBe(true);
    expect(matchesGlob('anything at all', '***')).toBe(true);
  });

  it('lets * match across line terminators and other characters a RegExp dot skips', () => {
    expect(matchesGlob('a\u2028b', 'a*b')).toBe(true);
    expect(matchesGlob('a\nb', 'a?b')).toBe(true);
  });

  it('treats RegExp syntax as plain characters', () => {
    expect(matchesGlob('(a)+', '(a)+')).toBe(true);
    expect(matchesGlob('aa', '(a)+')).toBe(false);
    expect(matchesGlob('[ab]', '[ab]')).toBe(true);
    expect(matchesGlob('a', '[ab]')).toBe(false);
    expect(matchesGlob('a\\d', 'a\\d')).toBe(true);
  });

  // With the old /^.*-.*-…$/ translation this never finished (exponential backtracking);
  // the linear matcher answers at once. Not timed: a hang fails it through the test timeout.
  it('rejects a 10,000-character name against a 40-star glob without backtracking', () => {
    const glob = `${'*a'.repeat(40)}b`;
    const name = 'a'.repeat(10_000);
    expect(matchesGlob(name, glob)).toBe(false);
    expect(matchesGlob(`${name}b`, glob)).toBe(true);
  });

  it('answers a hostile selector over a long VM name in the fleet matcher', () => {
    const matches = fleetMatcher(parseFleetSelector(`${'*-'.repeat(40)}x host:${'*?'.repeat(40)}z`));
    expect(matches('kvm-1', '-'.repeat(10_000))).toBe(false);
  });
});

describe('compileGlob and matchesAnyGlob', () => {
  it('compiles once and tests many values', () => {
    const matches = compileGlob('kvm-?*');
    expect(['kvm-1', 'kvm-12', 'kvm-', 'kvm'].map(matches)).toEqual([true, true, false, false]);
  });

  it('matches when any glob matches, and never for no globs', () => {
    expect(matchesAnyGlob('db-1', ['web-*', 'db-?'])).toBe(true);
    expect(matchesAnyGlob('db-10', ['web-*', 'db-?'])).toBe(false);
    expect(matchesAnyGlob('db-1', [])).toBe(false);
  });
});
