import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  cpuSecondsBetween,
  formatSummary,
  formatTable,
  interleave,
  median,
  meets,
  mergeHalves,
  parseProcStat,
  percentile,
  pinningFor,
  processTree,
  type ResultRow,
  row,
  spread,
  summarize,
  TARGETS,
  TURN_ONE_METRIC,
  targetRows,
  upArgs,
} from '../bench/lib.js';
import { parseLimitFlags } from '../src/config/limits.js';

describe('bench/lib helpers (no timing)', () => {
  test('percentile is nearest-rank; median of an even count is the lower middle', () => {
    const v = [5, 1, 4, 2, 3, 10, 9, 8, 7, 6];
    assert.equal(percentile(v, 50), 5);
    assert.equal(percentile(v, 90), 9);
    assert.equal(percentile(v, 99), 10);
    assert.equal(percentile(v, 0), 1);
    assert.equal(median([3, 1, 2]), 2);
    assert.ok(Number.isNaN(percentile([], 50)), 'Number.isNaN(percentile([], 50))');
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

  test('spread: median, min and max of the finite values', () => {
    assert.deepEqual(spread([3, 1, 2]), { median: 2, min: 1, max: 3, n: 3 });
    assert.deepEqual(spread([5, Number.NaN, 7]), { median: 5, min: 5, max: 7, n: 2 });
    assert.equal(spread([]).n, 0);
    assert.ok(Number.isNaN(spread([]).median), 'Number.isNaN(spread([]).median)');
  });

  test('interleaved rounds: every item once per round, rounds in order (A B C A B C)', () => {
    assert.deepEqual(
      interleave(['A', 'B', 'C'], 2).map((s) => `${s.round}${s.item}`),
      ['1A', '1B', '1C', '2A', '2B', '2C'],
    );
    assert.deepEqual(interleave(['A'], 0), []);
  });

  test('/proc/<pid>/stat: fields counted after the last parenthesis of the command name', () => {
    // proc(5): pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt utime stime …
    const line =
      '4242 (node (x) y) S 17 4242 4242 0 -1 4194304 1543 0 0 0 250 37 0 0 20 0 11 0 123456 1000000 5000 18446744073709551615\n';
    assert.deepEqual(parseProcStat(line), { pid: 4242, comm: 'node (x) y', ppid: 17, utime: 250, stime: 37 });
    assert.throws(() => parseProcStat('garbage'), /not a \/proc/);
    assert.throws(() => parseProcStat('1 (a) S x'), /field 4/);
  });

  test('processTree: the roots and all their descendants, nothing else', () => {
    const all = [
      { pid: 1, ppid: 0 },
      { pid: 10, ppid: 1 },
      { pid: 11, ppid: 10 },
      { pid: 12, ppid: 11 },
      { pid: 20, ppid: 1 },
      { pid: 30, ppid: 10 },
    ];
    assert.deepEqual(
      processTree([10], all).sort((a, b) => a - b),
      [10, 11, 12, 30],
    );
    assert.deepEqual(
      processTree([20, 99], all).sort((a, b) => a - b),
      [20, 99],
    );
  });

  test('CPU seconds between snapshots: per-process deltas; a process born meanwhile counts from 0', () => {
    const before = new Map([
      [1, 100],
      [2, 50],
    ]);
    const after = new Map([
      [1, 160],
      [2, 50],
      [3, 40],
    ]);
    assert.equal(cpuSecondsBetween(before, after, 100), 1);
  });

  test('pinning: core 0 for the load generator, the rest for the servers', () => {
    assert.deepEqual(pinningFor(2), { load: '0', server: '1' });
    assert.deepEqual(pinningFor(8), { load: '0', server: '1-7' });
    assert.throws(() => pinningFor(1), /at least 2 cores/);
  });

  test('summarize: every figure and ratio as median and min–max over the rounds; targets on the median', () => {
    const rows: ResultRow[] = [1, 2, 3].flatMap((round) => [
      {
        ...row({ scenario: 's', metric: 'a', value: [10, 30, 20][round - 1]!, unit: 'req/s', baseline: 10 }),
        round,
      },
      {
        ...row({
          scenario: 's',
          metric: 'r',
          value: [0.4, 0.6, 0.9][round - 1]!,
          unit: 'ratio',
          target: '>= 0.5',
        }),
        round,
      },
    ]);
    const [a, r] = summarize(rows);
    assert.deepEqual(a!.value, { median: 20, min: 10, max: 30, n: 3 });
    assert.deepEqual(a!.ratio, { median: 2, min: 1, max: 3, n: 3 });
    assert.deepEqual(r!.value, { median: 0.6, min: 0.4, max: 0.9, n: 3 });
    assert.equal(r!.met, true);
    const table = formatSummary(summarize(rows)).split('\n');
    assert.equal(table.length, 4);
    assert.match(table[0]!, /^scenario\s+metric\s+median\s+min–max\s+unit\s+ratio\s+ratio min–max\s+target/);
    assert.match(table[2]!, /^s\s+a\s+20\s+10–30\s+req\/s\s+2\.000×\s+1\.000–3\.000$/);
    assert.match(table[3]!, /^s\s+r\s+0\.600\s+0\.400–0\.900\s+ratio\s+>= 0\.5\s+met$/);
  });

  test('mergeHalves: the two halves of a bracketing baseline as one run', () => {
    const half = (rps: number, requests: number, cpu: number, p50: number, p99: number) => ({
      rps,
      requests,
      non2xx: 1,
      errors: 0,
      latencyMs: { p50, p90: p50 * 2, p99, max: p99 * 2 },
      cpuUsPerRequest: cpu,
    });
    const m = mergeHalves(half(1000, 2500, 100, 2, 10), half(600, 1500, 140, 4, 6));
    assert.equal(m.rps, 800); // equal windows: 4,000 requests in 5 s
    assert.equal(m.requests, 4000);
    assert.equal(m.non2xx, 2);
    // CPU per request: all the CPU ÷ all the requests (250,000 + 210,000 µs ÷ 4,000)
    assert.equal(m.cpuUsPerRequest, 115);
    assert.equal(m.latencyMs.p50, 2.75);
    assert.deepEqual([m.latencyMs.p99, m.latencyMs.max], [10, 20]);
  });

  test("targetRows: the issue's targets from one round's figures; a row without its figures is left out", () => {
    const fig = (scenario: string, metric: string, value: number): ResultRow =>
      row({ scenario, metric, value, unit: 'x' });
    const round = [
      fig('secrets', 'secret GET server CPU per request', 150),
      fig('secrets', 'floor (1 process) GET server CPU per request', 100),
      fig('secrets', 'secret GET throughput', 1000),
      fig('secrets', 'floor (1 process) GET throughput', 2000),
      fig('secrets', 'secret SET throughput', 600),
      fig('keys', 'vault ES256 sign throughput', 700),
      fig('keys', 'secret GET beside the ES256 sign throughput', 875),
      fig('tokens', 'client_assertion PS256 throughput', 300),
      fig('tokens', 'client_assertion ES256 throughput', 250),
      fig('tokens', 'client_secret throughput', 1000),
    ];
    const t = targetRows(round);
    assert.equal(TARGETS.length, 8);
    assert.deepEqual(
      t.map((r) => [r.metric, r.value, r.target, r.met]),
      [
        ['secret GET server CPU per request ÷ floor', 1.5, '<= 1.5', true],
        ['secret GET throughput ÷ one-process floor', 0.5, '>= 0.75', false],
        // the GET measured beside the sign on its server (since session 18) ...
        ['vault ES256 sign ÷ secret GET throughput', 0.8, '>= 0.8', true],
        // ... and the `secrets` scenario's, reported without a target
        ['vault ES256 sign ÷ the secrets scenario GET throughput', 0.7, undefined, undefined],
        ['client_assertion PS256 ÷ client_secret tokens/s', 0.3, '>= 0.7', false],
        // reported without a target: no `target`, no `met`, and not counted as a turn-one target
        ['client_assertion ES256 ÷ client_secret tokens/s', 0.25, undefined, undefined],
        ['secret SET ÷ secret GET throughput', 0.6, '>= 0.5', true],
      ],
    );
    assert.ok(
      t.every((r) => r.scenario === 'targets' && r.unit === 'ratio'),
      "t.every((r) => r.scenario === 'targets' && r.unit === 'ratio')",
    );
    assert.equal(targetRows([]).length, 0);
    // The PostgreSQL row: one `latchkey server` on PostgreSQL ÷ one on SQLite with the same flags.
    const pgRow = targetRows([
      ...round,
      fig('nodes', 'one node secret GET throughput', 800),
      fig('nodes', 'one node on SQLite secret GET throughput', 1000),
    ]).find((r) => r.metric === 'PostgreSQL node GET ÷ SQLite node GET');
    assert.deepEqual([pgRow?.value, pgRow?.target, pgRow?.met], [0.8, '>= 0.8', true]);
  });

  test('targetRows: a ratio whose figure comes from a load run with failed requests is left out', () => {
    // Issue 19: ES256 sign ÷ GET read 0.33 because 45 % of the sign requests were 429s of the
    // per-principal rate limit and throughput counts only 2xx answers.
    const fig = (scenario: string, metric: string, value: number): ResultRow =>
      row({ scenario, metric, value, unit: 'x' });
    const round = [
      fig('secrets', 'secret GET server CPU per request', 150),
      fig('secrets', 'floor (1 process) GET server CPU per request', 100),
      fig('secrets', 'secret GET throughput', 1000),
      fig('secrets', 'floor (1 process) GET throughput', 2000),
      fig('keys', 'vault ES256 sign throughput', 700),
      fig('keys', 'secret GET beside the ES256 sign throughput', 875),
    ];
    const metrics = (rows: ResultRow[]) => targetRows(rows).map((r) => r.metric);
    const es256 = 'vault ES256 sign ÷ secret GET throughput';
    assert.ok(metrics(round).includes(es256), 'the ES256 row is there without failures');
    assert.ok(
      metrics([...round, fig('keys', 'vault ES256 sign failed requests', 0)]).includes(es256),
      'a failed-requests row of 0 leaves the ratio in',
    );
    assert.deepEqual(metrics([...round, fig('keys', 'vault ES256 sign failed requests', 10_639)]), [
      'secret GET server CPU per request ÷ floor',
      'secret GET throughput ÷ one-process floor',
    ]);
    // A failed GET run takes out every ratio with its GET figure, on either side.
    assert.deepEqual(metrics([...round, fig('secrets', 'secret GET failed requests', 3)]), [es256]);
    assert.ok(
      !metrics([...round, fig('keys', 'secret GET beside the ES256 sign failed requests', 3)]).includes(
        es256,
      ),
      "a failed GET beside the sign takes the target's row out",
    );
    // Another run's failures (RS256) leave ES256 alone.
    assert.ok(
      metrics([...round, fig('keys', 'vault RS256 sign failed requests', 5)]).includes(es256),
      'failures of another run do not count',
    );
  });

  test("the shared server's `latchkey up` runs with the rate limits off (as `latchkey up` parses them)", () => {
    const limitsOf = (args: string[]) =>
      parseLimitFlags(args.flatMap((a, i) => (args[i - 1] === '--limit' ? [a] : [])));
    assert.deepEqual(limitsOf(upArgs('/d', { limitsOff: true })), { perAddressRate: 0, perPrincipalRate: 0 });
    assert.deepEqual(limitsOf(upArgs('/d')), {});
    assert.deepEqual(upArgs('/d').slice(0, 2), ['up', '--json']);
  });

  test('targetRows: the last row is the share of the turn-one targets measured that are met', () => {
    const withTarget = (metric: string, value: number, target: string): ResultRow =>
      row({ scenario: 'cold-start', metric, value, unit: 'ms', target });
    const share = (rows: ResultRow[]) => targetRows(rows).find((r) => r.metric === TURN_ONE_METRIC);
    const all = share([withTarget('a', 600, '< 1000'), withTarget('b', 100, '<= 150')]);
    assert.deepEqual([all?.value, all?.target, all?.met], [1, '>= 1', true]);
    const one = share([withTarget('a', 1200, '< 1000'), withTarget('b', 100, '<= 150')]);
    assert.deepEqual([one?.value, one?.met], [0.5, false]);
    assert.equal(share([row({ scenario: 's', metric: 'm', value: 1, unit: 'x' })]), undefined);
  });
});
