import { defineConfig } from 'vitest/config';

// Projects by what a test needs, so each can be run alone and given its own timeouts: unit (pure
// logic, no network: seconds, anywhere), integration (real RabbitMQ, Redis, PostgreSQL), e2e
// (whole flows in local mode), k8s (the local cluster). test/security runs attacks against real
// services and processes, so it belongs to integration. Integration and e2e tests spawn the
// compiled programs in dist/, so `scripts/setup` (which builds) runs before them.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/security/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // End-to-end tests each start a scaler and runner processes; on 2 cores they run one file at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          // The real local cluster (scripts/cluster up, which `npm run test:k8s` runs first).
          name: 'k8s',
          include: ['test/k8s/**/*.test.ts'],
          // On a failure, what the cluster held (test/k8s/setup.ts).
          setupFiles: ['test/k8s/setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
          // One node on 2 cores: files share it one at a time.
          fileParallelism: false,
        },
      },
    ],
  },
});
