import { describe, expect, it } from 'vitest';

// Imported here at run time, not at the top: a module that throws while it loads (a
// schema that cannot be built) then fails a test by name instead of failing the file
// before any test runs, which mutation testing would not count (docs/TESTING.md).
const RULE_MODULES = {
  'shared/policy.ts': () => import('../../shared/policy.js'),
  'shared/fleet.ts': () => import('../../shared/fleet.js'),
  'shared/names.ts': () => import('../../shared/names.js'),
  'shared/errors.ts': () => import('../../shared/errors.js'),
  'bot/core/authorize.ts': () => import('../../bot/core/authorize.js'),
  'worker/hypervisor/classify-virsh-error.ts': () => import('../../worker/hypervisor/classify-virsh-error.js'),
  'worker/hypervisor/virsh-parsers.ts': () => import('../../worker/hypervisor/virsh-parsers.js'),
};

describe('the rule modules', () => {
  it.each(Object.entries(RULE_MODULES))('%s loads', async (_path, load) => {
    await expect(load()).resolves.toBeDefined();
  });
});
