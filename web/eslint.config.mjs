// ESLint (flat config) for the browser code, its examples, the build tools and the JS unit tests.
// `npx eslint .` in web/; .ci/test runs it through tests/test_javascript.py.
import js from '@eslint/js';
import globals from 'globals';

export default [
  { ignores: ['dist/', 'node_modules/'] },
  js.configs.recommended,
  {
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { ...globals.browser } },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      'no-unused-vars': ['error', { args: 'after-used', argsIgnorePattern: '^_', caughtErrors: 'none' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-var': 'error',
      'prefer-const': ['error', { destructuring: 'all' }],
      'no-implicit-globals': 'error',
      'no-console': 'error',  // nothing of a file (PHI) may reach the console
    },
  },
  { files: ['src/worker.js', 'src/ocr.js', 'src/codecs.js'], languageOptions: { globals: { ...globals.worker } } },
  // An old portal toolkit on purpose (ES5 style): the widget must cope with it.
  { files: ['examples/legacy-framework.js'], languageOptions: { sourceType: 'script' }, rules: { 'no-var': 'off' } },
  { files: ['tools/**', 'test/**'], languageOptions: { globals: { ...globals.node } } },
];
