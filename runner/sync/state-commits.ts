// The step that makes a sync durable. A STATE the destination echoes back means everything
// before it is committed on the destination's side, so tidepool commits it too: merged into
// the connection's state, written only while this runner's lock still holds (the fence is
// checked atomically in the store), one commit after another in the order the destination
// confirmed them. A STATE the source sent and the destination never echoed is never committed:
// after a crash the next sync resumes from the last confirmed one, and nothing is lost.
//
// A destination that echoes STATEs in rapid bursts (a fast source checkpointing every few
// thousand records) would cost one store round trip each. With `minIntervalMs`, an echo that
// comes sooner than that after the last commit waits, and every echo that arrives meanwhile is
// committed with it: the merge of them all, which is the latest echoed state of each stream.
// Still only what the destination echoed; and settled() commits what waits at once, so the
// last echoed state is always committed before a sync ends.
import { asTidepoolError, LockLostError } from '../../shared/errors.js';
import { mergeState, type AirbyteStateMessage } from '../../shared/protocol.js';
import type { LockHandle } from '../../shared/store/locks.js';
import type { StateStore } from '../../shared/store/state.js';

/**
 * How often the runner commits echoed states at most (runner/sync/sync.ts): a burst costs a
 * commit per interval, not one per STATE. A runner killed meanwhile leaves the echoes of the
 * last interval uncommitted, as it leaves a commit in flight: the next sync resumes from the
 * state before them and reads those records again (never past what the destination has).
 */
export const STATE_COMMIT_INTERVAL_MS = 100;

export interface StateCommitOptions {
  /** Echoes within this many ms of the last commit wait and are committed together (0: each at once). */
  minIntervalMs?: number;
}

export class StateCommits {
  private chain: Promise<void> = Promise.resolve();
  private halted = false;
  /** Echoed, not yet handed to a commit: they wait for the interval to pass. */
  private waiting: AirbyteStateMessage[] = [];
  private timer: NodeJS.Timeout | undefined;
  private lastCommitAt = -Infinity;
  private readonly minIntervalMs: number;
  /** STATE messages the destination echoed. */
  echoed = 0;
  /** Of those, the ones committed. */
  committed = 0;
  /** The connection's state version after the last commit. */
  version: number | undefined;

  constructor(
    private readonly store: Pick<StateStore, 'commit'>,
    private readonly lock: LockHandle,
    private readonly syncId: string,
    /** The state this sync started from (empty for a full refresh). */
    private current: AirbyteStateMessage[],
    options: StateCommitOptions = {},
  ) {
    this.minIntervalMs = options.minIntervalMs ?? 0;
  }

  private readonly failing = new AbortController();
  /** Aborted, with the error as its reason, when the first commit fails; a lost lock also halts every commit after it. */
  readonly failed: AbortSignal = this.failing.signal;

  /** The state the connectors start from. */
  get state(): AirbyteStateMessage[] {
    return this.current;
  }

  /** A STATE the destination echoed: committed after the ones before it (with those that wait, when within the interval). */
  confirm(checkpoint: AirbyteStateMessage): void {
    this.echoed++;
    if (this.halted) return;
    this.waiting.push(checkpoint);
    if (this.timer) return;
    const wait = this.lastCommitAt + this.minIntervalMs - Date.now();
    if (wait <= 0) this.commitWaiting();
    else this.timer = setTimeout(() => this.commitWaiting(), wait);
  }

  /** Hands every waiting echo to one commit, after the commits before it. */
  private commitWaiting(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    this.waiting = [];
    if (batch.length === 0) return;
    this.lastCommitAt = Date.now();
    this.chain = this.chain.then(async () => {
      if (this.halted) return;
      // Merged even if this commit fails: the destination has it, so a later commit carries it.
      for (const checkpoint of batch) this.current = mergeState(this.current, checkpoint);
      try {
        this.version = await this.store.commit(this.lock, this.current, this.syncId);
        this.committed++;
      } catch (err) {
        const failure = asTidepoolError(err);
        if (failure instanceof LockLostError) this.halt();
        if (!this.failed.aborted) this.failing.abort(failure);
      }
    });
  }

  /** Commits nothing more: another runner owns the connection now. */
  halt(): void {
    this.halted = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.waiting = [];
  }

  /** Commits what waits for the interval at once; resolves once every confirmed STATE is committed or refused. Never rejects. */
  settled(): Promise<void> {
    this.commitWaiting();
    return this.chain;
  }
}
