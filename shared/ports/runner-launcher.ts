// Port: how the scaler starts runners. Adapters: local child processes (scaler/local-process.ts),
// Kubernetes Jobs. The scaler never asks an adapter whether a runner is *working*: that comes
// from the runners' own heartbeats. The adapter says what the platform knows — launched and not
// yet running (a pending pod), running, or finished.

export type RunnerPhase = 'pending' | 'running' | 'finished';

export interface LaunchedRunner {
  runnerId: string;
  phase: RunnerPhase;
  /** Epoch ms. */
  launchedAt: number;
  /** Set once finished: exit code of the runner (null when killed by a signal). */
  exitCode?: number | null;
  /** Why it finished, when the platform says (signal name, OOMKilled, DeadlineExceeded...). */
  reason?: string;
}

export interface RunnerLauncher {
  readonly kind: string;
  /** Starts `count` runners; returns their ids. Must not return before the platform accepted them. */
  launch(count: number): Promise<string[]>;
  /** The runners this launcher started (finished ones for a while after they end). */
  list(): Promise<LaunchedRunner[]>;
  /** Stops tracking; runners keep running and leave by themselves. */
  close(): Promise<void>;
}
