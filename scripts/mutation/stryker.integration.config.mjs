// @ts-check
/**
 * Mutation testing of the modules only Redis can exercise: `npm run test:mutation:integration`.
 *
 * The approvals module decides every request with Lua scripts run by Redis, so its
 * mutants (the scripts' text included) are judged by its integration tests against a
 * real redis-server (test/integration/bot/core/approvals.test.ts), not by unit tests.
 */
import unitConfig from './stryker.config.mjs';

export const MUTATE = ['bot/core/approvals.ts'];

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
const config = {
  ...unitConfig,
  vitest: { configFile: 'scripts/mutation/vitest.integration.config.mjs', related: false },
  // The Lua scripts are in scope here: Redis runs them in these tests.
  plugins: ['@stryker-mutator/vitest-runner'],
  ignorers: [],
  mutate: MUTATE,
  coverageAnalysis: 'perTest',
  timeoutMS: 30_000,
  htmlReporter: { fileName: 'reports/mutation-integration/mutation.html' },
  jsonReporter: { fileName: 'reports/mutation-integration/mutation.json' },
  ignorePatterns: ['/dist', '/data', '/run', '/reports', '/test/e2e', '/deploy', '/docs', '/.ci'],
};

export default config;
