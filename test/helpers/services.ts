// A test's own prefix and services, and waiting for a condition: in bench/support, since the
// benches need them too; tests import them from here.
export * from '../../bench/support/services.js';
export { waitFor } from '../../bench/support/wait.js';
