/**
 * Seedable PRNG (mulberry32) that is re-seeded per record: record i of a stream depends only
 * on (seed, stream, i), so a resumed incremental read produces exactly the records a full read
 * would have. One mutable instance is reused so the hot loop allocates nothing for it.
 */
export class Random {
  #state = 0;

  reset(seed: number): void {
    this.#state = seed | 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) | 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** Integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** Index into a list of `length` items. */
  index(length: number): number {
    return Math.floor(this.next() * length);
  }
}

/** FNV-1a of a string: turns (seed, stream) into the base seed of a stream. */
export function hashString(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i += 1) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** Seed of record `index` in a stream: murmur3's finaliser over the stream seed and the index. */
export function recordSeed(streamSeed: number, index: number): number {
  // Indexes can pass 2^32 (count × purchasesPerUser), so the high part is mixed in too.
  const high = Math.floor(index / 4294967296);
  let h = streamSeed ^ Math.imul(index >>> 0, 0x9e3779b1) ^ Math.imul(high, 0x85ebca6b);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
