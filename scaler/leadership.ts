// Port: who among several scalers may launch. Adapters: a Redis lock (shared/store/leader.ts,
// local mode) and a Kubernetes Lease (scaler/lease.ts).
export interface Leadership {
  /** True while this scaler leads; call at least once per TTL. */
  acquireOrRenew(): Promise<boolean>;
  resign(): Promise<void>;
}
