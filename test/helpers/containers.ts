// A broker or store of a test's own, in a container: in bench/support/containers.ts, since the
// reliability bench restarts them too; tests import it from here.
export * from '../../bench/support/containers.js';
