import type { ErrorCode } from '../../shared/errors.js';

/** What the failing virsh call was about, for the sentence users see. */
export interface VirshErrorContext {
  host?: string;
  /** The VM's name (or its UUID when the name is not known). */
  vm?: string;
  snapshot?: string;
}

export interface ClassifiedVirshError {
  code: ErrorCode;
  /** One sentence naming the VM, snapshot and host where known, ending with virsh's own words. */
  message: string;
  /** False when a later attempt may succeed without anyone changing anything. */
  permanent: boolean;
}

interface Rule {
  code: ErrorCode;
  /** Tested against each error line with its `error: ` prefix removed. */
  pattern: RegExp;
  describe: (context: Phrases) => string;
}

interface Phrases {
  vm: string;
  snapshot: string;
  onHost: string;
}

/**
 * libvirt prefixes most messages with the words of its error number ("operation
 * failed: ", "unsupported configuration: ", …). Patterns are anchored at the start of
 * a line, after at most such a prefix, so a VM or snapshot name quoted later in the
 * line (a snapshot may well be called "no such domain") cannot change the verdict.
 */
function line(body: string): RegExp {
  return new RegExp(`^(?:[A-Za-z][A-Za-z ]*: )?(?:${body})`, 'i');
}

// First match wins; the order matters only where texts overlap (the overlay-file text
// says both "unsupported configuration" and "already exists").
const RULES: readonly Rule[] = [
  {
    code: 'HYPERVISOR_UNAVAILABLE',
    pattern: line(
      'failed to connect to the hypervisor|failed to connect socket|no connection driver available|' +
        'cannot recv data|cannot write data|end of file while reading data|client socket is closed|' +
        'unable to connect to server|no valid connection',
    ),
    describe: ({ onHost }) => `Cannot reach libvirt${onHost}`,
  },
  {
    code: 'BUSY',
    pattern: line('cannot acquire state change lock'),
    describe: ({ vm, onHost }) => `${vm}${onHost} is busy with another libvirt operation`,
  },
  {
    code: 'DOMAIN_NOT_FOUND',
    pattern: line("failed to get domain '|domain not found\\b|no domain with matching"),
    describe: ({ vm, onHost }) => `${vm} not found${onHost}`,
  },
  {
    code: 'SNAPSHOT_NOT_FOUND',
    pattern: line("domain '.*' has no current snapshot"),
    describe: ({ vm, onHost }) => `${vm}${onHost} has no current snapshot`,
  },
  {
    code: 'SNAPSHOT_NOT_FOUND',
    pattern: line('domain snapshot not found\\b|no domain snapshot with matching name'),
    describe: ({ vm, snapshot, onHost }) => `Snapshot ${snapshot}not found on ${vm}${onHost}`,
  },
  {
    code: 'UNSUPPORTED',
    pattern: line('revert to external snapshot not supported yet'),
    describe: ({ vm, snapshot, onHost }) =>
      `Cannot revert ${vm} to external snapshot ${snapshot}because libvirt${onHost} is older than 9.9`,
  },
  {
    code: 'UNSUPPORTED',
    pattern: line('could not find base disk source in disk source chain'),
    describe: ({ vm, snapshot, onHost }) =>
      `Snapshot ${snapshot}of ${vm}${onHost} is an external snapshot outside the VM's current disk chain, which libvirt cannot delete`,
  },
  {
    code: 'UNSUPPORTED',
    pattern: line('(?:qemu )?guest agent is not (?:configured|connected|responding|available)'),
    describe: ({ vm, onHost }) => `${vm}${onHost} has no working QEMU guest agent, so its filesystems cannot be quiesced`,
  },
  {
    code: 'UNSUPPORTED',
    pattern: line('memory state cannot be saved with offline or disk-only snapshot'),
    describe: ({ vm, onHost }) => `A snapshot with memory needs ${vm}${onHost} to be running`,
  },
  {
    code: 'SNAPSHOT_EXISTS',
    pattern: line('external snapshot file for disk .* already exists'),
    describe: ({ vm, snapshot, onHost }) =>
      `Cannot create snapshot ${snapshot}on ${vm}${onHost}: a snapshot or disk overlay file by that name already exists`,
  },
  {
    code: 'SNAPSHOT_EXISTS',
    pattern: /already exists/i,
    describe: ({ vm, snapshot, onHost }) => `Snapshot ${snapshot}already exists on ${vm}${onHost}`,
  },
  {
    code: 'VALIDATION',
    pattern: line('invalid snapshot name'),
    describe: ({ vm, snapshot, onHost }) => `libvirt refused the snapshot name ${snapshot}for ${vm}${onHost}`,
  },
  {
    code: 'VALIDATION',
    pattern: line("failed to get option '.*': option argument is empty|option argument is empty"),
    describe: ({ vm, onHost }) => `virsh refused an empty option value for ${vm}${onHost}`,
  },
  {
    code: 'VALIDATION',
    pattern: line("command '.*' doesn't support option"),
    describe: ({ vm, onHost }) => `virsh refused the command line for ${vm}${onHost}`,
  },
  {
    code: 'UNSUPPORTED',
    pattern: line(
      'unsupported configuration|operation not supported|argument unsupported|this function is not supported',
    ),
    describe: ({ vm, onHost }) => `libvirt${onHost} cannot do that for ${vm}`,
  },
];

const TRANSIENT: ReadonlySet<ErrorCode> = new Set(['HYPERVISOR_UNAVAILABLE', 'BUSY']);

/** How many of virsh's error lines a message quotes, and how long each may be. */
const QUOTED_LINES = 2;
const QUOTED_LINE_LENGTH = 300;

/**
 * Maps what a failed virsh call wrote on stderr to a shared error code, a sentence for
 * users (naming the VM, snapshot and host where known, and ending with virsh's own
 * words) and whether retrying can help. Texts snapbot does not know are INTERNAL.
 */
export function classifyVirshError(stderr: string, context: VirshErrorContext = {}): ClassifiedVirshError {
  const lines = errorLines(stderr);
  const phrases: Phrases = {
    vm: context.vm ? `VM ${context.vm}` : 'the VM',
    snapshot: context.snapshot !== undefined ? `'${context.snapshot}' ` : '',
    onHost: context.host ? ` on host ${context.host}` : '',
  };
  const quoted = quoteVirsh(lines);

  for (const rule of RULES) {
    if (lines.some((text) => rule.pattern.test(text))) {
      return {
        code: rule.code,
        message: `${rule.describe(phrases)} ${quoted}`,
        permanent: !TRANSIENT.has(rule.code),
      };
    }
  }
  return {
    code: 'INTERNAL',
    message: `virsh failed for ${phrases.vm}${phrases.onHost} ${quoted}`,
    permanent: true,
  };
}

/**
 * virsh's error lines without their `error: ` prefix; when nothing looks like an error
 * line (a crash, a wrapper script), every non-empty line counts.
 */
function errorLines(stderr: string): string[] {
  const all = stderr
    .split('\n')
    .map((text) => text.trim())
    .filter((text) => text !== '');
  const errors = all.filter((text) => /^error: ?/i.test(text)).map((text) => text.replace(/^error: ?/i, ''));
  return errors.length > 0 ? errors : all;
}

function quoteVirsh(lines: string[]): string {
  if (lines.length === 0) return '(virsh printed no error message)';
  const shown = lines
    .slice(0, QUOTED_LINES)
    .map((text) => (text.length > QUOTED_LINE_LENGTH ? `${text.slice(0, QUOTED_LINE_LENGTH - 1)}…` : text));
  return `(virsh: error: ${shown.join('; ')})`;
}
