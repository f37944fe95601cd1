const transform = {
  '^.+\\.[tj]s$': ['ts-jest', { tsconfig: { module: 'commonjs', moduleResolution: 'node10', allowJs: true } }],
};
// Middy 7 is ESM-only and exports only the "import" condition: point Jest's CommonJS
// resolver at its files and let ts-jest transform them.
// Sources import each other with the '.js' suffix (ESM style); Jest resolves those to the .ts files.
const moduleNameMapper = {
  '^@middy/([a-z-]+)$': '<rootDir>/node_modules/@middy/$1/index.js',
  '^(\\.{1,2}/.*)\\.js$': '$1',
};
// npm test runs Jest --runInBand: integration suites share one moto server and reset it, so they must not overlap.
// JEST_PROJECT=unit|integration runs one project (npm run test:unit -- FILE): --selectProjects would take FILE as a project name.
const only = process.env.JEST_PROJECT;
module.exports = {
  // Integration tests wait for real visibility timeouts (a per-project testTimeout is not honoured).
  testTimeout: 60_000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/tests/unit/**/*.test.ts'],
      transform,
      moduleNameMapper,
      setupFiles: ['<rootDir>/tests/helpers/env.ts'],
      transformIgnorePatterns: ['/node_modules/(?!(@middy|p-limit|yocto-queue)/)'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      testMatch: ['<rootDir>/tests/integration/**/*.test.ts'],
      transform,
      moduleNameMapper,
      setupFiles: ['<rootDir>/tests/helpers/env.ts'],
      transformIgnorePatterns: ['/node_modules/(?!(@middy|p-limit|yocto-queue)/)'],
      globalSetup: '<rootDir>/tests/integration/global-setup.ts',
      globalTeardown: '<rootDir>/tests/integration/global-teardown.ts',
    },
  ].filter((project) => !only || project.displayName === only),
};
