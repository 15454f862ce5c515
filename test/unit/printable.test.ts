import { describe, expect, it } from 'vitest';
import { printable, table } from '../../cli/common.js';

describe('terminal output of untrusted text', () => {
  it('shows control characters as escapes', () => {
    expect(printable('a\r\nb\tc')).toBe('a\\r\\nb\\tc');
    expect(printable('\u001b[2J\u001b[31mred')).toBe('\\u001b[2J\\u001b[31mred');
    expect(printable('x\u0000\u007f\u009b\u2028\u202e')).toBe('x\\u0000\\u007f\\u009b\\u2028\\u202e');
    expect(printable('plain-id_1.2 ü é')).toBe('plain-id_1.2 ü é');
  });

  it('a cell cannot add a row to a table', () => {
    const out = table([
      ['SYNC', 'CONNECTION'],
      ['ok\r\nforged-sync  victim', 'c'],
    ]);
    expect(out.split('\n')).toHaveLength(2);
    expect(out).toContain('ok\\r\\nforged-sync  victim');
  });
});
