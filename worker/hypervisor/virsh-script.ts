/**
 * Several virsh subcommands in ONE virsh process: virsh reads a single argument after its
 * global options as a command line ("command-string mode", vshCommandStringParse), with
 * commands separated by newlines. N reads then cost one process start and one libvirt
 * connection instead of N (an inventory of 100 VMs went from 401 processes to 2).
 *
 * virsh runs every command of the line even after one fails, and exits with the status of
 * the last one only. So each command is preceded by `echo MARK-i` (stdout) and
 * `echo --err MARK-i` (stderr, printed as "error: MARK-i"); the marks cut both streams into
 * per-command parts. MARK is random per process, so nothing a VM or snapshot name prints
 * can forge one. A command whose part of stderr is not empty failed: virsh prints there
 * only through vshError, and every successful command we batch prints nothing there.
 */

/** Linux refuses a single argv element of MAX_ARG_STRLEN (128 KiB = 131,072 bytes, its NUL included) or more. */
export const MAX_SCRIPT_BYTES = 130_000;

/** Tokens virsh's command-string parser reads back as they are, unquoted (no blank, `;`, `#`, quote or backslash). */
const PLAIN_TOKEN = /^[A-Za-z0-9_.:=@%+,/-]+$/;

/**
 * One token as virsh's command-string parser reads it back verbatim: as it is when it
 * holds nothing special (commands, UUIDs, marks: shorter lines, more VMs per process);
 * otherwise in single quotes, inside which nothing is special (not `;`, `#`, a backslash,
 * a newline or a double quote), a single quote itself written as `'\''` (close, escaped
 * quote, reopen), exactly as in POSIX sh.
 */
export function quoteVirshToken(token: string): string {
  if (PLAIN_TOKEN.test(token)) return token;
  return `'${token.replaceAll("'", "'\\''")}'`;
}

/** The command line that runs `commands` in order, each after its two marks. */
export function composeVirshScript(commands: readonly (readonly string[])[], mark: string): string {
  return commands
    .map((command, index) =>
      [
        ['echo', `${mark}-${index}`],
        ['echo', '--err', `${mark}-${index}`],
        command,
      ]
        .map((tokens) => tokens.map(quoteVirshToken).join(' '))
        .join('\n'),
    )
    .join('\n');
}

/**
 * Splits `commands` into runs whose command lines stay under {@link MAX_SCRIPT_BYTES}, in
 * order. A run holds at least one command, however long.
 */
export function chunkVirshCommands<T extends readonly string[]>(commands: readonly T[], mark: string): T[][] {
  const chunks: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const command of commands) {
    // The command with its two marks (index 0 there, so add the real index's other digits) and its newline.
    const size = Buffer.byteLength(composeVirshScript([command], mark)) + 2 * (String(current.length).length - 1) + 1;
    if (current.length > 0 && bytes + size > MAX_SCRIPT_BYTES) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(command);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** What one command of a script printed, as if it had run alone. */
export interface ScriptPart {
  stdout: string;
  stderr: string;
}

/**
 * Cuts a script's stdout and stderr at the marks. Each part is what that command printed
 * alone: virsh ends every command (the echo too) with one extra newline, so the newline
 * after each stdout mark line belongs to the echo. Null when a mark is missing (virsh
 * stopped before or during the script: no connection, a parse error, killed).
 */
export function splitScriptOutput(stdout: string, stderr: string, mark: string, count: number): ScriptPart[] | null {
  const outParts = cutAtMarks(stdout, count, (index) => `${mark}-${index}\n\n`);
  const errParts = cutAtMarks(stderr, count, (index) => `error: ${mark}-${index}\n`);
  if (outParts === null || errParts === null) return null;
  return outParts.map((out, index) => ({ stdout: out, stderr: errParts[index] ?? '' }));
}

/**
 * The text between consecutive marks, each mark at the start of a line, in order. Text
 * before the first mark is allowed only on stderr-like streams that virsh writes before
 * it runs anything; here it means the script did not run as planned, so it is refused.
 */
function cutAtMarks(text: string, count: number, markOf: (index: number) => string): string[] | null {
  if (count === 0) return text === '' ? [] : null;
  if (!text.startsWith(markOf(0))) return null;
  const parts: string[] = [];
  let start = markOf(0).length;
  for (let index = 1; index <= count; index += 1) {
    if (index === count) {
      parts.push(text.slice(start));
      break;
    }
    const next = text.indexOf(`\n${markOf(index)}`, start - 1);
    if (next === -1) return null;
    // The command's output keeps its own final newline; the mark starts on the next line.
    parts.push(text.slice(start, next + 1));
    start = next + 1 + markOf(index).length;
  }
  return parts;
}
