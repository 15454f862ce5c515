// The one place that listens to process signals. The first SIGTERM/SIGINT asks for a graceful
// stop (stop intake, drain within a grace period); a second one forces it.

export interface ShutdownHandlers {
  graceful(signal: NodeJS.Signals): void;
  force(signal: NodeJS.Signals): void;
}

export function onShutdownSignals(handlers: ShutdownHandlers): () => void {
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count++;
    if (count === 1) handlers.graceful(signal);
    else handlers.force(signal);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  return () => {
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  };
}
