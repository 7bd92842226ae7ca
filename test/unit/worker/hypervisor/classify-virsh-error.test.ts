import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { ErrorCode } from '../../../../shared/errors.js';
import { classifyVirshError } from '../../../../worker/hypervisor/classify-virsh-error.js';

/** A real virsh output captured by test/fixtures/virsh-output/capture.sh (see its README). */
function fixture(file: string): string {
  return readFileSync(fileURLToPath(new URL(`../../../fixtures/virsh-output/${file}`, import.meta.url)), 'utf8');
}

/** Every captured case that exited 1, from cases.tsv. */
function failedCases(): string[] {
  return fixture('cases.tsv')
    .split('\n')
    .slice(1)
    .map((line) => line.split('\t'))
    .filter((columns) => columns[1] === '1')
    .map((columns) => columns[0]!);
}

// Captured stderr of virsh 9.0.0 (test/fixtures/virsh-output), and what it must mean.
const CAPTURED: ReadonlyArray<[file: string, code: ErrorCode]> = [
  ['domname-by-name', 'DOMAIN_NOT_FOUND'],
  ['domuuid-by-uuid', 'DOMAIN_NOT_FOUND'],
  ['domstate-no-such-domain-uuid', 'DOMAIN_NOT_FOUND'],
  ['domstate-no-such-domain-name', 'DOMAIN_NOT_FOUND'],
  ['error-snapshot-list-no-such-domain', 'DOMAIN_NOT_FOUND'],
  ['error-create-no-such-domain', 'DOMAIN_NOT_FOUND'],
  ['domstate-option-looking-name', 'VALIDATION'],
  ['error-unknown-option', 'VALIDATION'],
  ['error-name-with-slash', 'VALIDATION'],
  ['error-name-with-slash-disk-only', 'VALIDATION'],
  ['error-name-empty', 'VALIDATION'],
  ['snapshot-current-name-none', 'SNAPSHOT_NOT_FOUND'],
  ['error-info-no-such-snapshot', 'SNAPSHOT_NOT_FOUND'],
  ['error-dumpxml-no-such-snapshot', 'SNAPSHOT_NOT_FOUND'],
  ['error-revert-no-such-snapshot', 'SNAPSHOT_NOT_FOUND'],
  ['error-delete-no-such-snapshot', 'SNAPSHOT_NOT_FOUND'],
  ['create-name-dashdash-help-separate', 'SNAPSHOT_EXISTS'],
  ['error-duplicate-internal', 'SNAPSHOT_EXISTS'],
  ['error-duplicate-disk-only', 'SNAPSHOT_EXISTS'],
  ['error-duplicate-disk-only-file-exists', 'SNAPSHOT_EXISTS'],
  ['error-quiesce-without-agent', 'UNSUPPORTED'],
  ['error-revert-external', 'UNSUPPORTED'],
  ['error-delete-external-off-chain', 'UNSUPPORTED'],
  ['error-memspec-shutoff', 'UNSUPPORTED'],
  ['error-bad-socket', 'HYPERVISOR_UNAVAILABLE'],
  ['error-daemon-down-version', 'HYPERVISOR_UNAVAILABLE'],
  ['error-daemon-down-list', 'HYPERVISOR_UNAVAILABLE'],
  ['error-daemon-down-snapshot-list', 'HYPERVISOR_UNAVAILABLE'],
  // Not a snapbot operation; nothing more specific to say than "internal".
  ['error-undefine-with-snapshots', 'INTERNAL'],
];

describe('classifyVirshError with captured virsh texts', () => {
  it.each(CAPTURED)('maps %s to %s', (file, code) => {
    const classified = classifyVirshError(fixture(`${file}.stderr`), { host: 'kvm-01', vm: 'web-01', snapshot: 'x' });
    expect(classified.code).toBe(code);
    expect(classified.permanent).toBe(code !== 'HYPERVISOR_UNAVAILABLE');
    expect(classified.message).toMatch(/ \(virsh: error: [^\n]+\)$/);
  });

  it('has an expectation for every captured failure', () => {
    const known = new Set(CAPTURED.map(([file]) => file));
    expect(failedCases().filter((name) => !known.has(name))).toEqual([]);
  });

  it('quotes both lines of a two-line error', () => {
    expect(classifyVirshError(fixture('error-delete-external-off-chain.stderr'), { vm: 'web-01', snapshot: 'ext-1' }).message).toBe(
      "Snapshot 'ext-1' of VM web-01 is an external snapshot outside the VM's current disk chain, which libvirt cannot delete (virsh: error: Failed to delete snapshot ext-1; invalid argument: could not find base disk source in disk source chain)",
    );
  });
});

// stderr exactly as virsh 9.0.0 prints it (exit 1), from notes/libvirt.md and this machine.
const CASES: ReadonlyArray<{ situation: string; stderr: string; code: ErrorCode; permanent: boolean }> = [
  { situation: 'no such domain', stderr: "error: failed to get domain 'web-01'\n", code: 'DOMAIN_NOT_FOUND', permanent: true },
  {
    situation: 'domain gone during an API call',
    stderr: "error: Domain not found: no domain with matching uuid 'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff'\n",
    code: 'DOMAIN_NOT_FOUND',
    permanent: true,
  },
  {
    situation: 'no such snapshot',
    stderr: "error: Domain snapshot not found: no domain snapshot with matching name 'pre-upgrade'\n",
    code: 'SNAPSHOT_NOT_FOUND',
    permanent: true,
  },
  {
    situation: 'no current snapshot',
    stderr: "error: domain 'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff' has no current snapshot\n",
    code: 'SNAPSHOT_NOT_FOUND',
    permanent: true,
  },
  {
    situation: 'duplicate snapshot name',
    stderr: 'error: operation failed: domain moment 007 already exists\n',
    code: 'SNAPSHOT_EXISTS',
    permanent: true,
  },
  {
    situation: 'disk-only overlay file already there',
    stderr:
      'error: unsupported configuration: external snapshot file for disk vda already exists and is not a block device: /var/lib/libvirt/images/web-01.pre\n',
    code: 'SNAPSHOT_EXISTS',
    permanent: true,
  },
  {
    situation: "a '/' in the name",
    stderr: "error: invalid snapshot name 'a/b': name can't contain '/'\n",
    code: 'VALIDATION',
    permanent: true,
  },
  {
    situation: 'empty name',
    stderr: "error: Failed to get option 'name': Option argument is empty\n",
    code: 'VALIDATION',
    permanent: true,
  },
  {
    situation: 'option-looking positional value',
    stderr: "error: command 'domstate' doesn't support option --opt\n",
    code: 'VALIDATION',
    permanent: true,
  },
  {
    situation: 'daemon down',
    stderr:
      "error: failed to connect to the hypervisor\nerror: Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory\n",
    code: 'HYPERVISOR_UNAVAILABLE',
    permanent: false,
  },
  {
    situation: 'no driver for the URI',
    stderr: 'error: failed to connect to the hypervisor\nerror: no connection driver available for bogus:///x\n',
    code: 'HYPERVISOR_UNAVAILABLE',
    permanent: false,
  },
  {
    situation: 'daemon went away mid-call',
    stderr: 'error: End of file while reading data: Input/output error\n',
    code: 'HYPERVISOR_UNAVAILABLE',
    permanent: false,
  },
  {
    situation: 'another job holds the domain',
    stderr:
      'error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSnapshotCreateXML)\n',
    code: 'BUSY',
    permanent: false,
  },
  {
    situation: 'external revert on libvirt 9.0',
    stderr: 'error: Failed to revert snapshot ext1\nerror: unsupported configuration: revert to external snapshot not supported yet\n',
    code: 'UNSUPPORTED',
    permanent: true,
  },
  {
    situation: 'external delete off the current chain',
    stderr: 'error: Failed to delete snapshot ext1\nerror: invalid argument: could not find base disk source in disk source chain\n',
    code: 'UNSUPPORTED',
    permanent: true,
  },
  {
    situation: 'quiesce without guest agent',
    stderr: 'error: argument unsupported: QEMU guest agent is not configured\n',
    code: 'UNSUPPORTED',
    permanent: true,
  },
  {
    situation: 'memory snapshot of a shut-off domain',
    stderr: 'error: XML error: memory state cannot be saved with offline or disk-only snapshot\n',
    code: 'UNSUPPORTED',
    permanent: true,
  },
  {
    situation: 'some other unsupported configuration',
    stderr: "error: unsupported configuration: internal snapshot for disk vdb unsupported for storage type raw\n",
    code: 'UNSUPPORTED',
    permanent: true,
  },
  {
    situation: 'operation not supported',
    stderr: 'error: Operation not supported: live disk snapshot not supported with this QEMU binary\n',
    code: 'UNSUPPORTED',
    permanent: true,
  },
  {
    situation: 'stale internal snapshot',
    stderr: "error: Cannot access storage file '/var/lib/libvirt/images/web-01.ext1': No such file or directory\n",
    code: 'INTERNAL',
    permanent: true,
  },
  { situation: 'nothing on stderr', stderr: '', code: 'INTERNAL', permanent: true },
];

describe('classifyVirshError', () => {
  it.each(CASES)('maps $situation to $code', ({ stderr, code, permanent }) => {
    const classified = classifyVirshError(stderr, { host: 'kvm-01', vm: 'web-01', snapshot: 'pre-upgrade' });
    expect(classified.code).toBe(code);
    expect(classified.permanent).toBe(permanent);
    expect(classified.message).not.toContain('\n');
  });

  it("names the snapshot and VM and ends with virsh's own words", () => {
    const classified = classifyVirshError(
      "error: Domain snapshot not found: no domain snapshot with matching name 'pre-upgrade'\n",
      { vm: 'web-01', snapshot: 'pre-upgrade' },
    );
    expect(classified.message).toBe(
      "Snapshot 'pre-upgrade' not found on VM web-01 (virsh: error: Domain snapshot not found: no domain snapshot with matching name 'pre-upgrade')",
    );
  });

  it('names the host when it is known', () => {
    expect(classifyVirshError("error: failed to get domain 'web-01'\n", { host: 'kvm-01', vm: 'web-01' }).message).toBe(
      "VM web-01 not found on host kvm-01 (virsh: error: failed to get domain 'web-01')",
    );
  });

  it('says why an external revert is refused', () => {
    const { message } = classifyVirshError(
      'error: Failed to revert snapshot ext1\nerror: unsupported configuration: revert to external snapshot not supported yet\n',
      { host: 'kvm-01', vm: 'web-01', snapshot: 'ext1' },
    );
    expect(message).toBe(
      "Cannot revert VM web-01 to external snapshot 'ext1' because libvirt on host kvm-01 is older than 9.9 (virsh: error: Failed to revert snapshot ext1; unsupported configuration: revert to external snapshot not supported yet)",
    );
  });

  it('quotes at most the first two error lines', () => {
    const { message } = classifyVirshError('error: one\nerror: two\nerror: three\n', { vm: 'web-01' });
    expect(message).toBe('virsh failed for VM web-01 (virsh: error: one; two)');
  });

  it('keeps very long virsh lines short', () => {
    const { message } = classifyVirshError(`error: ${'x'.repeat(5000)}\n`, {});
    expect(message.length).toBeLessThan(400);
  });

  it('quotes lines without an error prefix when there is no error line', () => {
    expect(classifyVirshError('Segmentation fault\n', {}).message).toBe(
      'virsh failed for the VM (virsh: error: Segmentation fault)',
    );
  });

  it('still reads a duplicate name as such when the snapshot is called like another error', () => {
    const name = "Domain snapshot not found: no domain snapshot with matching name 'x'";
    const classified = classifyVirshError(`error: operation failed: domain moment ${name} already exists\n`, {
      snapshot: name,
    });
    expect(classified.code).toBe('SNAPSHOT_EXISTS');
  });

  it('still reads a missing snapshot as such when it is called like a busy domain', () => {
    const classified = classifyVirshError(
      "error: Domain snapshot not found: no domain snapshot with matching name 'cannot acquire state change lock'\n",
      { snapshot: 'cannot acquire state change lock' },
    );
    expect(classified.code).toBe('SNAPSHOT_NOT_FOUND');
  });

  it('says plainly when virsh printed nothing', () => {
    expect(classifyVirshError('', { vm: 'web-01', host: 'kvm-01' }).message).toBe(
      'virsh failed for VM web-01 on host kvm-01 (virsh printed no error message)',
    );
  });
});

describe('what users are told for each kind of virsh error', () => {
  const context = { host: 'kvm-01', vm: 'web-01', snapshot: 'pre' };

  it.each([
    ['error: failed to connect to the hypervisor', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: Failed to connect socket to /run/libvirt/libvirt-sock', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: no connection driver available for qemu:///system', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: cannot recv data: Connection reset by peer', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: cannot write data: Broken pipe', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: End of file while reading data: Input/output error', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: internal error: client socket is closed', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: unable to connect to server at kvm-01:16509', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: no valid connection', 'HYPERVISOR_UNAVAILABLE', 'Cannot reach libvirt on host kvm-01'],
    ['error: Timed out during operation: cannot acquire state change lock (held by monitor=remoteDispatchDomainSnapshotCreateXML)', 'BUSY', 'VM web-01 on host kvm-01 is busy with another libvirt operation'],
    ["error: failed to get domain 'web-01'", 'DOMAIN_NOT_FOUND', 'VM web-01 not found on host kvm-01'],
    ['error: Domain not found', 'DOMAIN_NOT_FOUND', 'VM web-01 not found on host kvm-01'],
    ["error: no domain with matching name 'web-01'", 'DOMAIN_NOT_FOUND', 'VM web-01 not found on host kvm-01'],
    ["error: domain 'web-01' has no current snapshot", 'SNAPSHOT_NOT_FOUND', 'VM web-01 on host kvm-01 has no current snapshot'],
    ['error: Domain snapshot not found', 'SNAPSHOT_NOT_FOUND', "Snapshot 'pre' not found on VM web-01 on host kvm-01"],
    ["error: no domain snapshot with matching name 'pre'", 'SNAPSHOT_NOT_FOUND', "Snapshot 'pre' not found on VM web-01 on host kvm-01"],
    ['error: unsupported configuration: revert to external snapshot not supported yet', 'UNSUPPORTED', "Cannot revert VM web-01 to external snapshot 'pre' because libvirt on host kvm-01 is older than 9.9"],
    ['error: invalid argument: could not find base disk source in disk source chain', 'UNSUPPORTED', "Snapshot 'pre' of VM web-01 on host kvm-01 is an external snapshot outside the VM's current disk chain, which libvirt cannot delete"],
    ['error: argument unsupported: QEMU guest agent is not configured', 'UNSUPPORTED', 'VM web-01 on host kvm-01 has no working QEMU guest agent, so its filesystems cannot be quiesced'],
    ['error: Guest agent is not responding: QEMU guest agent is not connected', 'UNSUPPORTED', 'VM web-01 on host kvm-01 has no working QEMU guest agent, so its filesystems cannot be quiesced'],
    ['error: guest agent is not available', 'UNSUPPORTED', 'VM web-01 on host kvm-01 has no working QEMU guest agent, so its filesystems cannot be quiesced'],
    ['error: unsupported configuration: memory state cannot be saved with offline or disk-only snapshot', 'UNSUPPORTED', 'A snapshot with memory needs VM web-01 on host kvm-01 to be running'],
    ['error: unsupported configuration: external snapshot file for disk vda already exists and is not a block device: /x', 'SNAPSHOT_EXISTS', "Cannot create snapshot 'pre' on VM web-01 on host kvm-01: a snapshot or disk overlay file by that name already exists"],
    ['error: operation failed: domain moment pre already exists', 'SNAPSHOT_EXISTS', "Snapshot 'pre' already exists on VM web-01 on host kvm-01"],
    ["error: invalid snapshot name 'a/b': name can't contain '/'", 'VALIDATION', "libvirt refused the snapshot name 'pre' for VM web-01 on host kvm-01"],
    ["error: Failed to get option 'name': Option argument is empty", 'VALIDATION', 'virsh refused an empty option value for VM web-01 on host kvm-01'],
    ['error: option argument is empty', 'VALIDATION', 'virsh refused an empty option value for VM web-01 on host kvm-01'],
    ["error: command 'snapshot-create-as' doesn't support option --bogus", 'VALIDATION', 'virsh refused the command line for VM web-01 on host kvm-01'],
    ['error: unsupported configuration: disk vda has no source', 'UNSUPPORTED', 'libvirt on host kvm-01 cannot do that for VM web-01'],
    ['error: Operation not supported: snapshots of raw disks', 'UNSUPPORTED', 'libvirt on host kvm-01 cannot do that for VM web-01'],
    ['error: argument unsupported: flag', 'UNSUPPORTED', 'libvirt on host kvm-01 cannot do that for VM web-01'],
    ['error: this function is not supported by the connection driver: virDomainSnapshotCreateXML', 'UNSUPPORTED', 'libvirt on host kvm-01 cannot do that for VM web-01'],
    ['error: internal error: something else', 'INTERNAL', 'virsh failed for VM web-01 on host kvm-01'],
  ] as const)('%s → %s', (stderr, code, sentence) => {
    const classified = classifyVirshError(`${stderr}\n`, context);
    expect(classified).toEqual({
      code,
      message: `${sentence} (virsh: error: ${stderr.replace(/^error: /, '')})`,
      permanent: code !== 'HYPERVISOR_UNAVAILABLE' && code !== 'BUSY',
    });
  });

  it('treats a busy VM as worth retrying', () => {
    expect(classifyVirshError('error: cannot acquire state change lock\n').permanent).toBe(false);
  });
});

describe('how virsh error lines are read', () => {
  it('reads the verdict only from the start of a line, after at most one libvirt prefix', () => {
    // The words of another error, quoted later in the line (here in a VM name), change nothing.
    expect(classifyVirshError("error: internal error: VM 'failed to connect to the hypervisor' crashed\n").code).toBe('INTERNAL');
    expect(classifyVirshError("error: internal error: the domain 'x' has no current snapshot\n").code).toBe('INTERNAL');
    expect(classifyVirshError('error: see: cannot acquire state change lock\n').code).toBe('BUSY');
    expect(classifyVirshError('error: 42: cannot acquire state change lock\n').code).toBe('INTERNAL');
    expect(classifyVirshError('error: : cannot acquire state change lock\n').code).toBe('INTERNAL');
  });

  it('reads words in any case', () => {
    expect(classifyVirshError('error: CANNOT ACQUIRE STATE CHANGE LOCK\n').code).toBe('BUSY');
    expect(classifyVirshError('ERROR: Domain Not Found\n').code).toBe('DOMAIN_NOT_FOUND');
  });

  it('needs whole words where a word could go on', () => {
    expect(classifyVirshError('error: domain not foundry\n').code).toBe('INTERNAL');
    expect(classifyVirshError('error: domain snapshot not founded\n').code).toBe('INTERNAL');
  });

  it("takes an error line with or without the blank after 'error:'", () => {
    expect(classifyVirshError('error:cannot acquire state change lock\n').message).toBe(
      'the VM is busy with another libvirt operation (virsh: error: cannot acquire state change lock)',
    );
  });

  it('reads only lines that start with error: as error lines when there are any', () => {
    const stderr = 'warning: cannot acquire state change lock\n  error: domain not found  \n';
    expect(classifyVirshError(stderr)).toMatchObject({ code: 'DOMAIN_NOT_FOUND', message: 'the VM not found (virsh: error: domain not found)' });
    expect(classifyVirshError('note: error: domain not found\n').message).toBe('virsh failed for the VM (virsh: error: note: error: domain not found)');
  });

  it("does not take a line that only mentions 'error:' later for an error line", () => {
    const stderr = 'warning: cannot acquire state change lock\nhint: see the error: log\n';
    expect(classifyVirshError(stderr)).toMatchObject({
      code: 'BUSY',
      message: 'the VM is busy with another libvirt operation (virsh: error: warning: cannot acquire state change lock; hint: see the error: log)',
    });
  });

  it('skips blank lines and the blanks around lines', () => {
    expect(classifyVirshError('\n  \n  Segmentation fault  \n\n core dumped\n').message).toBe(
      'virsh failed for the VM (virsh: error: Segmentation fault; core dumped)',
    );
  });

  it('finds the verdict on any error line, not only the first', () => {
    expect(classifyVirshError('error: Failed to create snapshot\nerror: cannot acquire state change lock\n').code).toBe('BUSY');
  });
});

describe('how much of virsh is quoted', () => {
  it('quotes a line of 300 characters whole', () => {
    const text = 'x'.repeat(300);
    expect(classifyVirshError(`error: ${text}\n`).message).toBe(`virsh failed for the VM (virsh: error: ${text})`);
  });

  it('cuts a line of 301 characters to 299 and an ellipsis', () => {
    const text = `${'x'.repeat(299)}yz`;
    expect(classifyVirshError(`error: ${text}\n`).message).toBe(`virsh failed for the VM (virsh: error: ${'x'.repeat(299)}…)`);
  });

  it('cuts each quoted line on its own', () => {
    const long = 'y'.repeat(400);
    expect(classifyVirshError(`error: ${long}\nerror: short\n`).message).toBe(`virsh failed for the VM (virsh: error: ${'y'.repeat(299)}…; short)`);
  });
});

describe('how the VM, the snapshot and the host are named', () => {
  it('says "the VM" when the VM is not known, and names no host', () => {
    expect(classifyVirshError('error: domain not found\n', {}).message).toBe('the VM not found (virsh: error: domain not found)');
  });

  it('names a snapshot even when its name is empty', () => {
    expect(classifyVirshError('error: domain snapshot not found\n', { vm: 'web-01', snapshot: '' }).message).toBe(
      "Snapshot '' not found on VM web-01 (virsh: error: domain snapshot not found)",
    );
  });

  it('leaves the snapshot out when it is not known', () => {
    expect(classifyVirshError('error: domain snapshot not found\n', { vm: 'web-01' }).message).toBe(
      'Snapshot not found on VM web-01 (virsh: error: domain snapshot not found)',
    );
  });

  it('names no VM for an empty VM name', () => {
    expect(classifyVirshError('error: domain not found\n', { vm: '', host: '' }).message).toBe('the VM not found (virsh: error: domain not found)');
  });
});
