import { z } from 'zod';

/**
 * Name rules follow libvirt's own (non-empty, no '/') plus what keeps names safe to
 * show and to use as file names: bounded length, no control characters, no hidden
 * characters (below), no leading or trailing blanks. Anything else, including names that
 * look like options or shell, is allowed and passed to virsh literally as one argv element.
 */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Characters that change what a reader sees without being seen themselves:
 * `baseline\u200b` looks like `baseline` to an approver, and U+202E shows `exe.txt` as
 * `txt.exe`. That is Unicode's Default_Ignorable_Code_Point set (zero-width spaces and
 * joiners, U+2060–U+206F including the bidi isolates, U+FEFF, the soft hyphen U+00AD,
 * U+034F, U+180E, Hangul fillers, tag characters U+E0000–U+E0FFF…) plus the bidi controls
 * (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069), the line and paragraph
 * separators U+2028/U+2029 and the interlinear annotation marks U+FFF9–U+FFFB.
 *
 * Kept, because they are visible in effect: variation selectors (`❤️` is U+2764 U+FE0F)
 * and a zero-width joiner between two emoji (`👩‍💻`), which draws them as one.
 */
const HIDDEN_CHARACTERS =
  /(?!\u200d|\p{Variation_Selector})[\p{Default_Ignorable_Code_Point}\p{Bidi_Control}\u2028\u2029\ufff9-\ufffb]|\u200d(?!\p{Extended_Pictographic})|(?<![\p{Extended_Pictographic}\p{Emoji_Modifier}\ufe0f])\u200d/gu;

const HIDDEN_CHARACTER = new RegExp(HIDDEN_CHARACTERS.source, 'u');

/** Names of the hidden characters people meet most, for the message that refuses one. */
const CHARACTER_NAMES: Record<number, string> = {
  0x00ad: 'soft hyphen',
  0x034f: 'combining grapheme joiner',
  0x061c: 'Arabic letter mark',
  0x180e: 'Mongolian vowel separator',
  0x200b: 'zero width space',
  0x200c: 'zero width non-joiner',
  0x200d: 'zero width joiner',
  0x200e: 'left-to-right mark',
  0x200f: 'right-to-left mark',
  0x2028: 'line separator',
  0x2029: 'paragraph separator',
  0x202a: 'left-to-right embedding',
  0x202b: 'right-to-left embedding',
  0x202c: 'pop directional formatting',
  0x202d: 'left-to-right override',
  0x202e: 'right-to-left override',
  0x2060: 'word joiner',
  0x2066: 'left-to-right isolate',
  0x2067: 'right-to-left isolate',
  0x2068: 'first strong isolate',
  0x2069: 'pop directional isolate',
  0xfeff: 'zero width no-break space',
};

/** `U+200B`: how snapbot names a character it will not show as itself. */
export function codePointLabel(character: string): string {
  return `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** The first hidden character of `text` (see HIDDEN_CHARACTERS), or undefined. */
export function findHiddenCharacter(text: string): string | undefined {
  return HIDDEN_CHARACTER.exec(text)?.[0];
}

function hiddenCharacterMessage(what: string, character: string): string {
  const name = CHARACTER_NAMES[character.codePointAt(0)!];
  return `${what} must not contain invisible or direction-changing characters: ${codePointLabel(character)}${name ? ` (${name})` : ''}`;
}

/** Refuses hidden characters, naming the first one found. */
function refuseHiddenCharacters(what: string) {
  return (value: string, context: z.RefinementCtx) => {
    const character = findHiddenCharacter(value);
    if (character !== undefined) context.addIssue({ code: 'custom', message: hiddenCharacterMessage(what, character) });
  };
}

/**
 * `text` with its hidden characters (and control characters other than tab and newline)
 * written out as `<U+200B>`. Names that reach snapbot from libvirt are not refused, since
 * the VMs exist; wherever they are shown (Discord, snapctl) they pass through here, so
 * `baseline\u200b` is seen as `baseline<U+200B>`.
 */
export function revealHiddenCharacters(text: string): string {
  return text
    .replace(HIDDEN_CHARACTERS, (character) => `<${codePointLabel(character)}>`)
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (character) => `<${codePointLabel(character)}>`);
}

function libvirtName(what: string, maxLength: number) {
  return z
    .string({ error: `${what} is required` })
    .min(1, `${what} must not be empty`)
    .max(maxLength, `${what} must be at most ${maxLength} characters`)
    .refine((value) => !value.includes('/'), `${what} must not contain '/'`)
    .refine((value) => !CONTROL_CHARACTERS.test(value), `${what} must not contain control characters`)
    .superRefine(refuseHiddenCharacters(what))
    .refine((value) => value.trim() === value, `${what} must not start or end with spaces`);
}

/** A libvirt domain name as an operator types it. */
export const vmNameSchema = libvirtName('VM name', 200);
/**
 * libvirt keeps a snapshot's metadata in `NAME.xml`, written as `NAME.xml.new` first: a
 * file name holds 255 bytes, so a name of more than 247 UTF-8 bytes fails "unable to save
 * metadata" — after qemu-img has already made the internal snapshot in the image.
 */
export const SNAPSHOT_NAME_MAX_BYTES = 247;

/**
 * A snapshot name; libvirt also uses it in file names (external overlays `disk.NAME`, its
 * metadata `NAME.xml`). libvirt itself refuses one that starts with '.'.
 */
export const snapshotNameSchema = libvirtName('snapshot name', 128)
  .refine((value) => !value.startsWith('.'), "snapshot name must not start with '.' (libvirt refuses it)")
  .refine(
    (value) => Buffer.byteLength(value, 'utf8') <= SNAPSHOT_NAME_MAX_BYTES,
    `snapshot name must be at most ${SNAPSHOT_NAME_MAX_BYTES} bytes in UTF-8 (libvirt stores it as a file name)`,
  );
/** Host ids become queue names (`host.<id>`), so they keep to hostname characters. */
export const hostIdSchema = z
  .string()
  .min(1, 'host id must not be empty')
  .max(63, 'host id must be at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'host id may contain only letters, digits, ".", "_" and "-"');

/**
 * A schedule's name: its id in Redis and BullMQ, its marker on every snapshot it makes
 * (`[snapbot job … schedule <name>]`), and the default prefix of those snapshots' names.
 * Lowercase letters, digits and '-', so it reads the same everywhere it appears.
 */
export const scheduleNameSchema = z
  .string()
  .min(1, 'schedule name must not be empty')
  .max(48, 'schedule name must be at most 48 characters')
  .regex(/^[a-z0-9][a-z0-9-]*$/, "schedule name may contain only lowercase letters, digits and '-', and starts with a letter or digit");

export const descriptionSchema = z
  .string()
  .max(1000, 'description must be at most 1000 characters')
  .refine((value) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value), 'description must not contain control characters')
  .superRefine(refuseHiddenCharacters('description'));

export const uuidSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'not a UUID');

/** The name snapbot gives a snapshot when the operator gives none: `snap-20261128-004612`. */
export function defaultSnapshotName(now: Date = new Date()): string {
  const iso = now.toISOString(); // 2026-11-28T00:46:12.345Z
  return `snap-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}
