// Real runner processes for end-to-end tests: in bench/support/runner-harness.ts, since the
// first-sync bench drives runners the same way; tests import it from here.
export * from '../../bench/support/runner-harness.js';
