// @ts-check
import { defineConfig } from 'vitest/config';

/**
 * The unit tests of the rule modules, for Stryker (scripts/mutation/stryker.config.mjs);
 * run from the project root. A mutant of a module-level value (a schema, a default, a
 * constant) makes Stryker re-run every test file that imports the module, and almost
 * everything imports shared/errors.ts, so the run is kept to the tests written for the
 * mutated modules. A module joining the run brings its test files here.
 */
export const TEST_FILES = [
  'test/unit/policy.test.ts',
  'test/unit/authorize.test.ts',
  'test/unit/names.test.ts',
  'test/unit/errors.test.ts',
  'test/unit/fleet-selectors.test.ts',
  'test/unit/fleet-targets.test.ts',
  'test/unit/jobs.test.ts',
  'test/unit/shared/jobs.test.ts', // where jobs.test.ts is moving
  'test/unit/rule-modules-load.test.ts',
  'test/unit/suggest.test.ts',
  'test/unit/suggest-fleet.test.ts',
  'test/unit/bot/core/suggestion-values.test.ts',
  'test/unit/classify-virsh-error.test.ts',
  'test/unit/virsh-parsers.test.ts',
  'test/unit/virsh-argv.test.ts',
  'test/unit/worker/hypervisor/virsh.test.ts', // where virsh-argv.test.ts is moving
];

export default defineConfig({
  test: {
    include: TEST_FILES,
    testTimeout: 10_000,
    reporters: ['default'],
  },
});
