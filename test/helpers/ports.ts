// A free loopback port: in bench/support/ports.ts, next to the containers that need one (the
// reliability bench starts those too); tests import it from here.
export * from '../../bench/support/ports.js';
