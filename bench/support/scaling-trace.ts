// The scaling benchmark's workload, generated from a seed: bursts of syncs (many connections'
// schedules firing at once) and a trickle between them over ~15 minutes, each sync's duration
// drawn from a lognormal, and the pod start of each runner launched, in launch order, from
// 3-8 s. The simulator (bench/scaling-sim.ts) replays it in milliseconds; a benchmark on a real
// cluster replays the same trace (same seed, same arrivals and durations: source-e2e-test's
// `delayMs` × `records`), so the two can be compared. No Math.random: the same seed gives the
// same trace on every machine.

/** mulberry32: a small, fast 32-bit PRNG; `next()` is uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box-Muller; one of the pair is enough here). */
function normal(random: () => number): number {
  const u = 1 - random(); // (0, 1]: log(0) is never taken
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** A lognormal draw whose median is `median` and whose log has standard deviation `sigma`. */
export function lognormal(random: () => number, median: number, sigma: number): number {
  return median * Math.exp(sigma * normal(random));
}

export interface TraceSync {
  /** Stable within the trace: `s<index>`, in arrival order. */
  syncId: string;
  connectionId: string;
  /** Published this long after the trace starts. */
  atMs: number;
  /** How long the sync runs once a runner has it: `records` × `delayMs`. */
  durationMs: number;
  /** source-e2e-test's settings that give that duration on a cluster. */
  records: number;
  delayMs: number;
}

export interface ScalingTrace {
  seed: number;
  /** In arrival order. */
  syncs: TraceSync[];
  /** The n-th runner launched, whichever scaler launches it, takes podStartsMs[n % length] to start consuming. */
  podStartsMs: number[];
  spanMs: number;
}

export interface TraceShape {
  /** Total syncs (bursts + trickle). */
  syncs: number;
  /** Of those, the share that arrive in bursts. */
  burstShare: number;
  bursts: number;
  /** A burst's syncs are published within this long of its start. */
  burstSpreadMs: number;
  spanMs: number;
  /** Connections the syncs belong to; a burst's syncs are all of different connections (none waits on another's lock). */
  connections: number;
  /** Each connection's typical duration is lognormal around this (median), with this spread. */
  durationMedianMs: number;
  connectionSigma: number;
  /** One sync's duration around its connection's typical one. */
  syncSigma: number;
  /** source-e2e-test's delay between records: durations are whole multiples of it. */
  recordDelayMs: number;
  podStartMinMs: number;
  podStartMaxMs: number;
}

/** Issue 14's trace: 290 syncs over 15 minutes, 4 bursts and a trickle, pod start 3-8 s. */
export const DEFAULT_TRACE_SHAPE: TraceShape = {
  syncs: 290,
  burstShare: 0.8,
  bursts: 4,
  burstSpreadMs: 10_000,
  spanMs: 15 * 60_000,
  connections: 120,
  durationMedianMs: 20_000,
  connectionSigma: 0.6,
  syncSigma: 0.3,
  recordDelayMs: 100,
  podStartMinMs: 3_000,
  podStartMaxMs: 8_000,
};

/**
 * The trace bench:scaling replays on the test cluster by default: issue 14's shape cut to what
 * a 2-core single node runs at once (max runners 8 of concurrency 2) and to a minute and a
 * half, so that a replay with its drain (the last syncs, the runners' 30 s idle timeout) takes
 * about 2.5 minutes and thirteen scalers replay it in turn within ~40. Three bursts of ~15
 * syncs (each about the pool's 16 slots) and a trickle; durations lognormal around 8 s, from a
 * few seconds to ~30 s.
 */
export const CLUSTER_TRACE_SHAPE: TraceShape = {
  ...DEFAULT_TRACE_SHAPE,
  syncs: 60,
  burstShare: 0.75,
  bursts: 3,
  burstSpreadMs: 5_000,
  spanMs: 90_000,
  connections: 60,
  durationMedianMs: 8_000,
};

/**
 * `shape` played `factor` times faster: the span, a burst's spread and the durations divided
 * by it, the counts kept. Pod starts are not the trace's to shorten (a cluster has its own), and
 * a duration stays whole records of the same delay, so a short sync is still one record.
 */
export function compressShape(shape: TraceShape, factor: number): TraceShape {
  if (!(factor >= 1)) throw new Error(`a trace is compressed by a factor ≥ 1 (got ${factor})`);
  return {
    ...shape,
    spanMs: Math.round(shape.spanMs / factor),
    burstSpreadMs: Math.round(shape.burstSpreadMs / factor),
    durationMedianMs: Math.max(shape.recordDelayMs, Math.round(shape.durationMedianMs / factor)),
  };
}

/** A different integer per index, for sub-streams of one seed. */
const stream = (seed: number, index: number): number => (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + index * 0x27d4eb2f) >>> 0;

/** Splits `total` into `parts` random positive shares summing to it. */
function split(random: () => number, total: number, parts: number): number[] {
  const weights = Array.from({ length: parts }, () => 0.5 + random());
  const sum = weights.reduce((a, b) => a + b, 0);
  const sizes = weights.map((w) => Math.floor((w / sum) * total));
  for (let i = 0; sizes.reduce((a, b) => a + b, 0) < total; i = (i + 1) % parts) sizes[i]!++;
  return sizes;
}

export function generateTrace(seed: number, shape: TraceShape = DEFAULT_TRACE_SHAPE): ScalingTrace {
  // Separate streams for arrivals, durations and pod starts: changing one part of the shape
  // does not reshuffle the others.
  const arrivals = seededRandom(stream(seed, 1));
  const durations = seededRandom(stream(seed, 2));
  const pods = seededRandom(stream(seed, 3));

  const typical = Array.from({ length: shape.connections }, () => lognormal(durations, shape.durationMedianMs, shape.connectionSigma));
  const burstTotal = Math.round(shape.syncs * shape.burstShare);
  const events: { atMs: number; connection: number }[] = [];

  // Bursts start spread over the span (each in its own slice of it), leaving room for the last to finish.
  const slice = (shape.spanMs - shape.burstSpreadMs) / shape.bursts;
  split(arrivals, burstTotal, shape.bursts).forEach((size, b) => {
    const start = b * slice + arrivals() * slice * 0.5;
    const picked = distinct(arrivals, shape.connections, size);
    for (const connection of picked) events.push({ atMs: start + arrivals() * shape.burstSpreadMs, connection });
  });
  // The trickle: uniform arrivals over the span (a Poisson process given its count).
  for (let i = 0; i < shape.syncs - burstTotal; i++) {
    events.push({ atMs: arrivals() * shape.spanMs, connection: Math.floor(arrivals() * shape.connections) });
  }
  events.sort((a, b) => a.atMs - b.atMs || a.connection - b.connection);

  const syncs = events.map(({ atMs, connection }, i): TraceSync => {
    const raw = lognormal(durations, typical[connection]!, shape.syncSigma);
    const records = Math.max(1, Math.round(raw / shape.recordDelayMs));
    return {
      syncId: `s${i}`,
      connectionId: `c${connection}`,
      atMs: Math.round(atMs),
      durationMs: records * shape.recordDelayMs,
      records,
      delayMs: shape.recordDelayMs,
    };
  });
  const podStartsMs = Array.from({ length: 512 }, () => Math.round(shape.podStartMinMs + pods() * (shape.podStartMaxMs - shape.podStartMinMs)));
  return { seed, syncs, podStartsMs, spanMs: shape.spanMs };
}

/** `count` distinct integers below `n` (all of them, shuffled, when count ≥ n). */
function distinct(random: () => number, n: number, count: number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  const out = all.slice(0, Math.min(count, n));
  // More syncs in a burst than connections: the rest repeat connections (waiting on their locks).
  while (out.length < count) out.push(Math.floor(random() * n));
  return out;
}
