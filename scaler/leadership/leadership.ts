// Port: who among several scalers may launch. Adapters, beside it: a Redis lock (redis-lock.ts,
// local mode) and a Kubernetes Lease (lease.ts). Only the scaler leads, so the port lives here.
export interface Leadership {
  /** True while this scaler leads; call at least once per TTL. */
  acquireOrRenew(): Promise<boolean>;
  resign(): Promise<void>;
}
