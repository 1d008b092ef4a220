import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'src/**/*.test.ts', 'sdk/src/**/*.test.ts'],
    // Tests spawn real worker processes; the 2-core CI machine needs generous hook time.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
})
