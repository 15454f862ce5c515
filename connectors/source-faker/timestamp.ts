// Date#toISOString costs ~0.8 µs here, two per user record: a third of the time budget of a
// 300k records/s source. This formats the same string from integer arithmetic, and keeps
// the date part per day, since fake timestamps fall on a few thousand distinct days.

const DAY_MS = 86_400_000;
const TWO_DIGITS = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0'));
const THREE_DIGITS = Array.from({ length: 1000 }, (_, n) => String(n).padStart(3, '0'));
const MAX_CACHED_DAYS = 100_000;
const datePrefixes = new Map<number, string>();

/** Same output as `new Date(ms).toISOString()` for years 0000–9999. */
export function isoTimestamp(ms: number): string {
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = Math.floor(rest / 1000);
  const millis = rest - seconds * 1000;
  return `${datePrefix(days)}${TWO_DIGITS[hours]}:${TWO_DIGITS[minutes]}:${TWO_DIGITS[seconds]}.${THREE_DIGITS[millis]}Z`;
}

/** "YYYY-MM-DDT" of a day counted from 1970-01-01. */
function datePrefix(days: number): string {
  let prefix = datePrefixes.get(days);
  if (prefix !== undefined) return prefix;
  // Civil date from days since the epoch (Howard Hinnant's civil_from_days).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  prefix = `${String(year).padStart(4, '0')}-${TWO_DIGITS[month]}-${TWO_DIGITS[day]}T`;
  if (datePrefixes.size >= MAX_CACHED_DAYS) datePrefixes.clear();
  datePrefixes.set(days, prefix);
  return prefix;
}
