// A PostgreSQL database of a test's own: in bench/support/pg.ts, since the reliability bench
// writes to one too; tests import it from here.
export * from '../../bench/support/pg.js';
