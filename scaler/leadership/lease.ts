// Leader election through a coordination.k8s.io Lease, for scalers with several replicas.
// Optimistic concurrency does the arbitration: every update carries the resourceVersion read,
// so of two replicas racing for an expired lease one gets 409 and stays a follower.
//
// The scaler asks every tick (1 s), but the leader writes only every ttl/3, from the copy its
// last write returned: no read, and nothing at all in between (a read and a write per tick
// was ~170k requests a day for an idle scaler). A stale copy cannot renew a lease someone else
// took: its resourceVersion makes the write a 409, and then the lease is read afresh.
import { performance } from 'node:perf_hooks';
import { CoordinationV1Api, V1MicroTime, type KubeConfig, type V1Lease, type V1LeaseSpec } from '@kubernetes/client-node';
import { isConflict, isNotFound } from '../../shared/kube.js';
import type { Leadership } from './leadership.js';

export class KubernetesLease implements Leadership {
  private readonly api: CoordinationV1Api;
  /**
   * The lease as our last successful write left it, and when (monotonic clock: a wall clock
   * stepped back must not stretch our leadership). Unset while we are not the leader.
   */
  private held: { lease: V1Lease; renewedAt: number } | undefined;

  constructor(
    kc: KubeConfig,
    private readonly namespace: string,
    private readonly name: string,
    private readonly holder: string,
    private readonly ttlMs: number,
    private readonly now: () => Date = () => new Date(),
    private readonly monotonic: () => number = () => performance.now(),
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
  }

  async acquireOrRenew(): Promise<boolean> {
    // Renewed within ttl/3: still ours for at least 2/3 of the TTL, by anyone's reckoning.
    if (this.held && this.monotonic() - this.held.renewedAt < this.ttlMs / 3) return true;
    if (this.held) {
      const renewed = await this.write(this.held.lease, true);
      if (renewed) return true;
      // 409: changed since our write (taken over, or edited): decide on a fresh read.
    }
    // Lease times are MicroTime: a plain Date serialises with milliseconds, which the API server
    // rejects ("cannot be handled as a Lease: parsing time"), so every time written is one.
    const now = new V1MicroTime(this.now());
    const durationSeconds = this.durationSeconds();
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      const startedAt = this.monotonic();
      try {
        const created = await this.api.createNamespacedLease({
          namespace: this.namespace,
          body: {
            metadata: { name: this.name, namespace: this.namespace },
            spec: { holderIdentity: this.holder, leaseDurationSeconds: durationSeconds, acquireTime: now, renewTime: now, leaseTransitions: 0 },
          },
        });
        this.held = { lease: created, renewedAt: startedAt };
        return true;
      } catch (e) {
        if (isConflict(e)) return false;
        throw e;
      }
    }
    const spec = lease.spec ?? {};
    const renewed = spec.renewTime ? new Date(spec.renewTime).getTime() : 0;
    const expired = renewed + (spec.leaseDurationSeconds ?? durationSeconds) * 1000 < now.getTime();
    const mine = spec.holderIdentity === this.holder;
    if (!mine && !expired && spec.holderIdentity) {
      this.held = undefined;
      return false;
    }
    lease.spec = spec;
    return this.write(lease, mine);
  }

  /** Writes `lease` as held by us from now; false on 409 (someone wrote it since it was read). */
  private async write(lease: V1Lease, mine: boolean): Promise<boolean> {
    const spec = (lease.spec ??= {});
    const now = new V1MicroTime(this.now());
    asMicroTimes(spec);
    spec.holderIdentity = this.holder;
    spec.leaseDurationSeconds = this.durationSeconds();
    spec.renewTime = now;
    if (!mine) {
      spec.acquireTime = now;
      spec.leaseTransitions = (spec.leaseTransitions ?? 0) + 1;
    }
    // Counted from before the request: the API server's renewTime is no earlier than this.
    const startedAt = this.monotonic();
    try {
      const written = await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: lease });
      this.held = { lease: written, renewedAt: startedAt };
      return true;
    } catch (err) {
      this.held = undefined;
      if (isConflict(err)) return false;
      throw err;
    }
  }

  private durationSeconds(): number {
    return Math.max(1, Math.ceil(this.ttlMs / 1000));
  }

  async resign(): Promise<void> {
    this.held = undefined;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace });
      if (lease.spec?.holderIdentity !== this.holder) return;
      // An empty holder and an expired renewTime let the next replica take over at once.
      asMicroTimes(lease.spec);
      lease.spec.holderIdentity = '';
      lease.spec.renewTime = new V1MicroTime(0);
      await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body: lease });
    } catch (err) {
      if (!isNotFound(err) && !isConflict(err)) throw err;
    }
  }
}

/** Times read back from the server are plain Dates; written back as such they are rejected. */
function asMicroTimes(spec: V1LeaseSpec): void {
  if (spec.acquireTime) spec.acquireTime = new V1MicroTime(spec.acquireTime);
  if (spec.renewTime) spec.renewTime = new V1MicroTime(spec.renewTime);
}
