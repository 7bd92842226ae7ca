// @ts-check
/**
 * Mutation testing of the rule modules: `npm run test:mutation` (docs/TESTING.md).
 *
 * Stryker changes one small thing at a time in the files below (a `===` into `!==`, a
 * default `false` into `true`, a regex anchor dropped…) and runs the unit tests
 * against each change; a change that no test notices "survives". Not part of
 * `npm test`: it runs the unit tests once per mutant and takes minutes.
 *
 * To add a module (the approvals module, the signing code…), add its path to MUTATE
 * and its tests under test/unit/; modules only Redis can exercise need an integration
 * config of their own (see docs/TESTING.md).
 */

/** The rule modules: who may do what, names, fleet selectors, error texts, virsh output. */
export const MUTATE = [
  'shared/policy.ts',
  'shared/fleet.ts',
  'shared/names.ts',
  'shared/errors.ts',
  'bot/core/authorize.ts',
  'bot/core/suggest.ts',
  'worker/hypervisor/classify-virsh-error.ts',
  'worker/hypervisor/virsh-parsers.ts',
  // The trust code: signatures over jobs, and the key formats.
  'shared/signing.ts',
  'shared/job-signing.ts',
  'shared/ssh-keys.ts',
  // Schedules: what a keep spec means, what retention prunes, when a schedule fires.
  'shared/schedules/keep-spec.ts',
  'shared/schedules/retention.ts',
  'shared/schedules/cadence.ts',
  'shared/schedules/time-zone.ts',
];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
const config = {
  $schema: '../../node_modules/@stryker-mutator/core/schema/stryker-schema.json',
  packageManager: 'npm',
  testRunner: 'vitest',
  vitest: { configFile: 'scripts/mutation/vitest.config.mjs', related: true },
  plugins: ['@stryker-mutator/vitest-runner', './scripts/mutation/lua-script-ignorer.mjs'],
  // Lua scripts in template strings run inside Redis; unit tests cannot run them.
  ignorers: ['lua-scripts'],
  mutate: MUTATE,
  coverageAnalysis: 'perTest',
  // The machine is small and shared; raise with `--concurrency N` on a bigger one.
  concurrency: 1,
  timeoutMS: 10_000,
  reporters: ['clear-text', 'progress', 'html', 'json'],
  htmlReporter: { fileName: 'reports/mutation/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  clearTextReporter: { allowColor: false, logTests: false, reportMutants: true, reportScoreTable: true },
  // Only what the unit tests need goes into the sandbox.
  ignorePatterns: ['/dist', '/data', '/run', '/reports', '/test/integration', '/test/e2e', '/deploy', '/docs', '/.ci'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
  thresholds: { high: 90, low: 85, break: null },
};

export default config;
