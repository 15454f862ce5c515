import type { AirbyteStream } from '../../shared/protocol.js';
import type { Random } from './random.js';
import { isoTimestamp } from './timestamp.js';
import { FIRST_NAMES, LAST_NAMES, PLACES, PRODUCTS, STREETS, TITLES } from './words.js';

export interface FakerConfig {
  seed: number;
  count: number;
  purchasesPerUser: number;
  stateEvery: number;
}

/** A fake stream: records are numbered 1..size and record `id` is a function of (seed, stream, id). */
export interface FakeStream {
  definition: AirbyteStream;
  size(config: FakerConfig): number;
  /**
   * The record's JSON, from a Random already seeded for this id. Built as a template rather
   * than with JSON.stringify: stringifying a 10-field object costs ~1.3 µs on a small VM, a
   * third of the per-record budget. Every interpolated string is pre-escaped or numeric.
   */
  recordJson(random: Random, id: number, config: FakerConfig): string;
}

// Timestamps come from the record's own randomness, never from the clock, so a second run
// (or a resumed one) produces byte-identical records.
const EPOCH_MS = Date.UTC(2020, 0, 1);
const DAY_MS = 86_400_000;
const FOUR_YEARS_MS = 4 * 365 * DAY_MS;

/** The JSON string body of a word, without the quotes, escaped once at load. */
const escape = (word: string): string => JSON.stringify(word).slice(1, -1);
const FIRST = FIRST_NAMES.map(escape);
const LAST = LAST_NAMES.map(escape);
const FIRST_LOWER = FIRST_NAMES.map((name) => escape(name.toLowerCase()));
const LAST_LOWER = LAST_NAMES.map((name) => escape(name.toLowerCase()));
const TITLE = TITLES.map(escape);
const STREET = STREETS.map(escape);
const CITY = PLACES.map(([city]) => escape(city));
const COUNTRY = PLACES.map(([, country]) => escape(country));
const PRODUCT = PRODUCTS.map(escape);

const integer = { type: 'integer' } as const;
const text = { type: 'string' } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;

function definition(name: string, properties: Record<string, unknown>): AirbyteStream {
  return {
    name,
    json_schema: {
      $schema: 'http://json-schema.org/draft-07/schema#',
      type: 'object',
      additionalProperties: false,
      required: Object.keys(properties),
      properties,
    },
    supported_sync_modes: ['full_refresh', 'incremental'],
    source_defined_cursor: true,
    default_cursor_field: ['id'],
    source_defined_primary_key: [['id']],
  };
}

const users: FakeStream = {
  definition: definition('users', {
    id: integer,
    name: text,
    email: text,
    title: text,
    age: integer,
    address: {
      type: 'object',
      additionalProperties: false,
      required: ['street', 'city', 'zip', 'country'],
      properties: { street: text, city: text, zip: text, country: text },
    },
    created_at: dateTime,
    updated_at: dateTime,
  }),
  size: (config) => config.count,
  recordJson(random, id) {
    const first = random.index(FIRST.length);
    const last = random.index(LAST.length);
    const title = random.index(TITLE.length);
    const age = random.int(18, 80);
    const house = random.int(1, 9999);
    const street = random.index(STREET.length);
    const place = random.index(CITY.length);
    const zip = random.int(10000, 99999);
    const created = EPOCH_MS + Math.floor(random.next() * FOUR_YEARS_MS);
    const updated = created + Math.floor(random.next() * 365 * DAY_MS);
    return (
      `{"id":${id},"name":"${FIRST[first]} ${LAST[last]}","email":"${FIRST_LOWER[first]}.${LAST_LOWER[last]}.${id}@example.com",` +
      `"title":"${TITLE[title]}","age":${age},"address":{"street":"${house} ${STREET[street]}","city":"${CITY[place]}",` +
      `"zip":"${zip}","country":"${COUNTRY[place]}"},"created_at":"${isoTimestamp(created)}","updated_at":"${isoTimestamp(updated)}"}`
    );
  },
};

const purchases: FakeStream = {
  definition: definition('purchases', {
    id: integer,
    user_id: integer,
    product: text,
    price: { type: 'number' },
    quantity: integer,
    purchased_at: dateTime,
  }),
  size: (config) => config.count * config.purchasesPerUser,
  recordJson(random, id, config) {
    // Each user owns a contiguous block of purchases, so every user_id exists in users.
    const userId = Math.ceil(id / config.purchasesPerUser);
    const product = random.index(PRODUCT.length);
    const price = random.int(99, 99_999) / 100;
    const quantity = random.int(1, 5);
    const purchased = EPOCH_MS + Math.floor(random.next() * FOUR_YEARS_MS);
    return `{"id":${id},"user_id":${userId},"product":"${PRODUCT[product]}","price":${price},"quantity":${quantity},"purchased_at":"${isoTimestamp(purchased)}"}`;
  },
};

export const FAKE_STREAMS: ReadonlyMap<string, FakeStream> = new Map(
  [users, purchases].map((stream) => [stream.definition.name, stream]),
);
