// The record scanner's fast path, compiled: takes a run of plain RECORD lines that the
// JavaScript scanner (runner/records/line-scanner.ts) would accept with the same result, and
// stops at the first line it is not sure of, which the JavaScript scanner then decides.
//
// Why native: on one runner forwarding trivial connectors, the JavaScript scanner's ~200 ns a
// line was most of the runner's CPU; its cost is in the calls (a native indexOf per string),
// not in the checks. Here the same checks run at ~90 ns a line, with memchr for strings and
// newlines.
//
// It only ever accepts: a line it would reject, or one whose checks it does not make (a second
// "stream", "namespace", "type" or "record", a namespace that is not a string, any other
// message type, an empty line),
// ends the run and goes to the JavaScript scanner, which gives the error or the result. So a bug here can make the
// runner slower, and the differential test (test/unit/record-scanner-native.test.ts) is what
// keeps it from accepting what the JavaScript scanner refuses. Input is hostile: every read is
// bounded by the line's end, and nesting by a fixed stack.
#include <node_api.h>
#include <stdint.h>
#include <string.h>

// As line-scanner.ts: deeper nesting is refused there, so it is not accepted here.
#define MAX_NESTING 1024
static const char PREFIX[] = "{\"type\":\"RECORD\",\"record\":{\"stream\":\"";
#define PREFIX_LEN (sizeof(PREFIX) - 1)

static inline int is_ws(uint8_t c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

static inline size_t skip_ws(const uint8_t *b, size_t i, size_t end) {
  while (i < end && is_ws(b[i])) i++;
  return i;
}

// i at an opening quote; returns the index after its closing quote, or 0 if the string does not
// end before `end`. A quote ends the string unless an odd run of backslashes stands right
// before it, counted back no further than the opening quote (as skipString in line-scanner.ts).
static size_t skip_string(const uint8_t *b, size_t i, size_t end) {
  for (size_t j = i + 1; j < end;) {
    const uint8_t *found = memchr(b + j, '"', end - j);
    if (!found) return 0;
    size_t q = (size_t)(found - b);
    if (b[q - 1] != '\\') return q + 1;
    size_t k = q - 1;
    while (k > i + 1 && b[k - 1] == '\\') k--;
    if ((q - k) % 2 == 0) return q + 1;
    j = q + 1;
  }
  return 0;
}

// The index after the value at b[i], or 0 where line-scanner.ts's skipValue would throw.
static size_t skip_value(const uint8_t *b, size_t i, size_t end) {
  if (i >= end) return 0;
  uint8_t c = b[i];
  if (c == '"') return skip_string(b, i, end);
  if (c == '{' || c == '[') {
    uint8_t open[MAX_NESTING];
    size_t depth = 0;
    for (size_t j = i; j < end; j++) {
      uint8_t x = b[j];
      if (x == '"') {
        size_t after = skip_string(b, j, end);
        if (!after) return 0;
        j = after - 1;
      } else if (x == '{' || x == '[') {
        if (depth == MAX_NESTING) return 0;
        open[depth++] = x;
      } else if (x == '}' || x == ']') {
        if (depth == 0 || open[--depth] != (x == '}' ? '{' : '[')) return 0;
        if (depth == 0) return j + 1;
      }
    }
    return 0;
  }
  // A literal or a number: to the next delimiter; its first byte says which it may be.
  size_t j = i;
  while (j < end && (uint8_t)(b[j] - '0') < 10) j++;
  while (j < end && !(b[j] == ',' || b[j] == '}' || b[j] == ']' || is_ws(b[j]))) j++;
  if (j == i) return 0;
  if (!(c == 't' || c == 'f' || c == 'n' || c == '-' || (c >= '0' && c <= '9'))) return 0;
  return j;
}

static inline int key_is(const uint8_t *b, size_t start, size_t end, const char *key, size_t n) {
  return end - start == n && memcmp(b + start, key, n) == 0;
}

// A member of an object after its first: at i, whitespace then "," then a key and its ":".
// Returns the index of the value with the key's bounds in *ks/*ke; 0 at the object's "}" (with
// *closed set to the index after it) or where the line breaks the grammar.
static size_t next_member(const uint8_t *b, size_t i, size_t end, size_t *ks, size_t *ke, size_t *closed) {
  i = skip_ws(b, i, end);
  if (i >= end) return 0;
  if (b[i] == '}') {
    *closed = i + 1;
    return 0;
  }
  if (b[i] != ',') return 0;
  i = skip_ws(b, i + 1, end);
  if (i >= end || b[i] != '"') return 0;
  *ks = i + 1;
  i = skip_string(b, i, end);
  if (!i) return 0;
  *ke = i - 1;
  i = skip_ws(b, i, end);
  if (i >= end || b[i] != ':') return 0;
  i = skip_ws(b, i + 1, end);
  return i < end ? i : 0;
}

// One line b[start, end), without its newline and CR. 1 when it is a RECORD that line-scanner.ts
// accepts, with the bounds of its stream name and of its namespace (*ns_start = *ns_end = 0 when
// it has none); 0 when unsure. Only the shape every Airbyte SDK writes is taken: "type" first,
// then "record" with "stream" first.
static int scan_record(const uint8_t *b, size_t start, size_t end, size_t *stream_start, size_t *stream_end, size_t *ns_start, size_t *ns_end) {
  size_t i = skip_ws(b, start, end);
  if (end - i <= PREFIX_LEN || memcmp(b + i, PREFIX, PREFIX_LEN) != 0) return 0;
  *stream_start = i + PREFIX_LEN;
  i = skip_string(b, i + PREFIX_LEN - 1, end);
  if (!i) return 0;
  *stream_end = i - 1;
  *ns_start = *ns_end = 0;
  size_t ks = 0, ke = 0, closed = 0;
  int has_data = 0;
  // The record's other members.
  for (;;) {
    size_t v = next_member(b, i, end, &ks, &ke, &closed);
    if (!v) {
      if (!closed) return 0;
      i = closed;
      break;
    }
    if (key_is(b, ks, ke, "stream", 6)) return 0;
    if (key_is(b, ks, ke, "namespace", 9)) {
      // A string, once: line-scanner.ts then takes it as the namespace too.
      if (b[v] != '"' || *ns_end) return 0;
      *ns_start = v + 1;
      i = skip_string(b, v, end);
      if (!i) return 0;
      *ns_end = i - 1;
      continue;
    }
    if (key_is(b, ks, ke, "data", 4)) {
      if (b[v] != '{') return 0;
      has_data = 1;
    }
    i = skip_value(b, v, end);
    if (!i) return 0;
  }
  if (!has_data) return 0;
  // The message's other members.
  for (closed = 0;;) {
    size_t v = next_member(b, i, end, &ks, &ke, &closed);
    if (!v) {
      if (!closed) return 0;
      i = closed;
      break;
    }
    if (key_is(b, ks, ke, "type", 4) || key_is(b, ks, ke, "record", 6)) return 0;
    i = skip_value(b, v, end);
    if (!i) return 0;
  }
  return skip_ws(b, i, end) == end;
}

// scanRecords(buf: Uint8Array, from: number, maxLineBytes: number, out: Int32Array) -> number
// From buf[from], takes complete lines while each is a RECORD scan_record accepts, of the same
// stream and namespace as the first, no longer than maxLineBytes. Returns where the first line
// not taken starts (from itself when none was); out gets [records, bytes (CR and newlines
// excluded), the first line's stream name start and end, its namespace's start and end (-1, -1
// when it has none)].
static napi_value ScanRecords(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4) goto bad;
  napi_typedarray_type type;
  size_t len, out_len, offset;
  void *data, *out_data;
  napi_value arraybuffer;
  if (napi_get_typedarray_info(env, argv[0], &type, &len, &data, &arraybuffer, &offset) != napi_ok || type != napi_uint8_array) goto bad;
  if (napi_get_typedarray_info(env, argv[3], &type, &out_len, &out_data, &arraybuffer, &offset) != napi_ok || type != napi_int32_array || out_len < 6) goto bad;
  int64_t from, max_line;
  if (napi_get_value_int64(env, argv[1], &from) != napi_ok || napi_get_value_int64(env, argv[2], &max_line) != napi_ok) goto bad;
  if (from < 0 || (uint64_t)from > len || max_line < 0) goto bad;

  const uint8_t *b = data;
  int32_t *out = out_data;
  size_t pos = (size_t)from, records = 0, bytes = 0, first_start = 0, first_end = 0, first_ns_start = 0, first_ns_end = 0;
  // Counts and offsets go back as int32: a larger view (none the pipe makes) takes no fast path.
  while (len <= INT32_MAX && pos < len) {
    const uint8_t *newline = memchr(b + pos, '\n', len - pos);
    if (!newline) break;
    size_t nl = (size_t)(newline - b), end = nl;
    if ((int64_t)(nl - pos) > max_line) break;
    if (end > pos && b[end - 1] == '\r') end--;
    size_t ss, se, ns, ne;
    if (end == pos || !scan_record(b, pos, end, &ss, &se, &ns, &ne)) break;
    if (records == 0) {
      first_start = ss;
      first_end = se;
      first_ns_start = ns;
      first_ns_end = ne;
    } else if (se - ss != first_end - first_start || memcmp(b + ss, b + first_start, se - ss) != 0 ||
               (ne != 0) != (first_ns_end != 0) || ne - ns != first_ns_end - first_ns_start ||
               memcmp(b + ns, b + first_ns_start, ne - ns) != 0) {
      break;
    }
    records++;
    bytes += end - pos;
    pos = nl + 1;
  }
  out[0] = (int32_t)records;
  out[1] = (int32_t)bytes;
  out[2] = (int32_t)first_start;
  out[3] = (int32_t)first_end;
  out[4] = first_ns_end ? (int32_t)first_ns_start : -1;
  out[5] = first_ns_end ? (int32_t)first_ns_end : -1;
  napi_value result;
  napi_create_int64(env, (int64_t)pos, &result);
  return result;

bad:
  napi_throw_type_error(env, NULL, "scanRecords(buf: Uint8Array, from: number, maxLineBytes: number, out: Int32Array(6))");
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "scanRecords", NAPI_AUTO_LENGTH, ScanRecords, NULL, &fn);
  napi_set_named_property(env, exports, "scanRecords", fn);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
