// @ts-check
import { PluginKind, declareValuePlugin } from '@stryker-mutator/api/plugin';

/**
 * Leaves alone the Lua scripts that shared/fleet.ts (and later modules) hand to Redis:
 * `export const SOMETHING_SCRIPT = \`…\``. A mutant there only changes text Redis would
 * run, which no unit test can execute; the integration tests (test/integration/fleet*)
 * are what exercise those scripts.
 */
export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'lua-scripts', {
    /** @param {any} path a Babel NodePath */
    shouldIgnore(path) {
      if (
        path.isVariableDeclarator() &&
        path.node.id.type === 'Identifier' &&
        /_SCRIPT$/.test(path.node.id.name) &&
        (path.node.init?.type === 'TemplateLiteral' || path.node.init?.type === 'StringLiteral')
      ) {
        return 'Lua script run by Redis; exercised by the integration tests, not the unit tests';
      }
      return undefined;
    },
  }),
];
