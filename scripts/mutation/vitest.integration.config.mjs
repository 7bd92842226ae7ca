// @ts-check
import { defineConfig } from 'vitest/config';

/** The integration tests of the modules in stryker.integration.config.mjs (real redis-server). */
export const TEST_FILES = [
  'test/integration/bot/core/approvals.test.ts',
  // The request schemas, imported inside the tests (a schema that cannot be built fails a test).
  'test/unit/bot/core/approval-subjects.test.ts',
];

export default defineConfig({
  test: {
    include: TEST_FILES,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    reporters: ['default'],
  },
});
