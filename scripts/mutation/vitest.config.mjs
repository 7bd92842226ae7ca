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
  'test/unit/shared/policy.test.ts',
  'test/unit/shared/names.test.ts',
  'test/unit/shared/errors.test.ts',
  'test/unit/shared/fleet-selectors.test.ts',
  'test/unit/shared/fleet-targets.test.ts',
  'test/unit/shared/jobs.test.ts',
  'test/unit/bot/core/authorize.test.ts',
  'test/unit/bot/core/suggest.test.ts',
  'test/unit/bot/core/suggest-fleet.test.ts',
  'test/unit/bot/core/suggestion-values.test.ts',
  'test/unit/bot/core/visible-inventory.test.ts',
  'test/unit/rule-modules-load.test.ts',
  'test/unit/worker/hypervisor/classify-virsh-error.test.ts',
  'test/unit/worker/hypervisor/virsh-parsers.test.ts',
  'test/unit/worker/hypervisor/virsh.test.ts',
  'test/unit/shared/signing.test.ts',
  'test/unit/shared/signing-key-race.test.ts',
  'test/unit/shared/job-signing.test.ts',
  'test/unit/shared/ssh-keys.test.ts',
  'test/unit/bot/core/operators.test.ts',
  'test/unit/schedules/keep-spec.test.ts',
  'test/unit/schedules/retention.test.ts',
  'test/unit/schedules/cadence.test.ts',
  'test/unit/schedules/time-zone.test.ts',
];

export default defineConfig({
  test: {
    include: TEST_FILES,
    testTimeout: 10_000,
    reporters: ['default'],
  },
});
