// The figures benches report. Rounds are few (3-5) and a shared 2-core machine makes some of them
// slow for reasons of its own: a median, not a mean, so that one disturbed round does not move it.

/** The middle value; the mean of the two middle ones for an even count. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Nearest-rank percentile (`p` from 0 to 1); NaN for no values. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

/** Records per second. */
export const rate = (records: number, ms: number): number => records / (ms / 1000);

/** A rate as the benches print it: "136,426 rec/s". */
export const fmtRate = (r: number): string => `${Math.round(r).toLocaleString('en-US')} rec/s`;
