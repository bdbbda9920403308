import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatTable, median, meets, percentile, row } from '../bench/lib.js';

describe('bench/lib helpers (no timing)', () => {
  test('percentile is nearest-rank; median of an even count is the lower middle', () => {
    const v = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert.equal(percentile(v, 50), 5);
    assert.equal(percentile(v, 90), 9);
    assert.equal(percentile(v, 99), 10);
    assert.equal(percentile(v, 0), 1);
    assert.equal(median([3, 1, 2]), 2);
    assert.ok(Number.isNaN(percentile([], 50)));
  });

  test('targets and ratios', () => {
    assert.equal(meets(2500, '>= 2000'), true);
    assert.equal(meets(1999, '>= 2000'), false);
    assert.equal(meets(830, '< 1000'), true);
    assert.equal(meets(1000, '< 1000'), false);
    assert.equal(meets(1, 'nonsense'), false);
    const r = row({
      scenario: 's',
      metric: 'm',
      value: 4210.123,
      unit: 'tokens/s',
      baseline: 7265,
      target: '>= 2000',
    });
    assert.equal(r.value, 4210.12);
    assert.equal(r.ratio, 0.5795);
    assert.equal(r.met, true);
    assert.equal(row({ scenario: 's', metric: 'm', value: 1, unit: 'ms' }).ratio, undefined);
  });

  test('the table has a header, a rule and one line per row', () => {
    const t = formatTable([
      row({
        scenario: 'tokens',
        metric: 'throughput',
        value: 4210,
        unit: 'tokens/s',
        baseline: 7265,
        target: '>= 2000',
      }),
      row({ scenario: 'cold-start', metric: 'restart', value: 1200, unit: 'ms', target: '< 1000' }),
    ]).split('\n');
    assert.equal(t.length, 4);
    assert.match(t[0]!, /^scenario\s+metric\s+value\s+unit\s+baseline\s+ratio\s+target/);
    assert.match(t[1]!, /^-+\s+-+/);
    assert.match(t[2]!, /tokens\s+throughput\s+4,210\s+tokens\/s\s+7,265\s+0\.580×\s+>= 2000\s+ok$/);
    assert.match(t[3]!, /MISSED$/);
  });
});
