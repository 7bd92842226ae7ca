/**
 * Globs for host ids, VM names and snapshot names: `*` is any run of characters
 * (including none), `?` is exactly one character, everything else stands for itself,
 * case-sensitive. A character is a Unicode code point, so `?` matches one emoji.
 *
 * Why not a RegExp: `web-*-*-*…` as `/^web-.*-.*-.*…$/` backtracks exponentially on a
 * long name that does not match, and selectors are typed by anyone who can open /fleet
 * autocomplete (11 stars stalled the event loop 4.3 s). The matcher below is the classic
 * greedy walk that, on a mismatch, goes back only to the last `*` seen: no input makes it
 * take more than O(value × glob) steps.
 */

/** A compiled glob: call it with a value. */
export type GlobPredicate = (value: string) => boolean;

/**
 * Compiles `glob` once, for testing many values (a selector against a whole inventory).
 * Runs of `*` are collapsed (`**` is `*`), and a glob without wildcards compares strings.
 */
export function compileGlob(glob: string): GlobPredicate {
  const pattern = collapseStars(Array.from(glob));
  if (!pattern.includes('*') && !pattern.includes('?')) return (value) => value === glob;
  if (pattern.length === 1 && pattern[0] === '*') return () => true;
  return (value) => matchCodePoints(Array.from(value), pattern);
}

/** Whether `value` matches `glob` (`*` and `?` only; see the module comment). */
export function matchesGlob(value: string, glob: string): boolean {
  return compileGlob(glob)(value);
}

/** Whether `value` matches at least one of `globs`. */
export function matchesAnyGlob(value: string, globs: readonly string[]): boolean {
  return globs.some((glob) => matchesGlob(value, glob));
}

function collapseStars(pattern: string[]): string[] {
  return pattern.filter((char, index) => char !== '*' || pattern[index - 1] !== '*');
}

/**
 * Two pointers over value and pattern. On a `*`, remember where it is and where in the
 * value it started, and first try matching it to nothing; on a later mismatch, let that
 * last `*` swallow one more character and resume from there. Earlier stars never need
 * revisiting: whatever they would swallow, the last star can swallow instead.
 */
function matchCodePoints(value: readonly string[], pattern: readonly string[]): boolean {
  let v = 0;
  let p = 0;
  let starAt = -1;
  let resumeAt = 0;
  while (v < value.length) {
    const token = pattern[p];
    if (token === '*') {
      starAt = p;
      resumeAt = v;
      p += 1;
    } else if (token !== undefined && (token === '?' || token === value[v])) {
      v += 1;
      p += 1;
    } else if (starAt >= 0) {
      resumeAt += 1;
      v = resumeAt;
      p = starAt + 1;
    } else {
      return false;
    }
  }
  while (pattern[p] === '*') p += 1;
  return p === pattern.length;
}
