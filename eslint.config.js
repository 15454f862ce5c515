// typescript-eslint's strict type-checked rules: with the types, lint sees what tsc lets through.
// no-floating-promises and no-misused-promises matter most here: an unawaited promise in a
// consumer loses work silently.
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'eslint.config.js'] },
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // Non-null assertions on indexes we have just checked read better than extra branches.
      '@typescript-eslint/no-non-null-assertion': 'off',
      // Fire-and-forget is written `void promise` on purpose, with its errors handled inside.
      '@typescript-eslint/no-confusing-void-expression': 'off',
      // @kubernetes/client-node declares its API objects (V1Job, V1Pod...) as classes but
      // serialises plain objects; its own documentation builds them as literals.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
    },
  },
  {
    // The dashboard page's script runs in the browser as it is (no build step): linted without
    // type information, which the TypeScript project does not have for it.
    files: ['scaler/dashboard/public/**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { sourceType: 'module' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // afterAll guards against a beforeAll that failed half-way, which the types cannot know.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
);
