// The /metrics exposition, without a server: every sample line parses under the text format's
// rules, NaN spelled `NaN` (prom-client writes `Nan` for the event-loop lag before its first sample).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createMetrics } from '../src/server/metrics.js';

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})?) (\S+)$/;
/** Values as the text format writes them: a Go float, `NaN`, `+Inf`, `-Inf`. */
const VALUE = /^(?:NaN|[+-]Inf|[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)$/;

test('the exposition parses strictly, at once after start and after requests are recorded', async () => {
  const metrics = createMetrics();
  const check = (text: string) => {
    let samples = 0;
    for (const line of text.split('\n')) {
      if (line === '' || line.startsWith('#')) continue;
      const m = SAMPLE.exec(line);
      assert.ok(m, `unparseable line: ${line}`);
      assert.match(m[2]!, VALUE, line);
      samples++;
    }
    return samples;
  };
  // Straight away: the event-loop lag has no sample yet (its mean is NaN).
  const first = await metrics.render();
  assert.ok(check(first) > 20, 'check(first) > 20');
  assert.match(first, /^nodejs_eventloop_lag_mean_seconds (NaN|\d)/m);
  metrics.route('vault', 'GET', '/secrets/:name').record(200, 0.004);
  const later = await metrics.render();
  check(later);
  assert.match(later, /route="\/secrets\/:name"/);
});

test('a route series is one per app, method and route: asking again (the console app, built later) adds to it', async () => {
  const metrics = createMetrics();
  const a = metrics.route('main', 'GET', '/console/vaults');
  assert.equal(metrics.route('main', 'GET', '/console/vaults'), a);
  assert.notEqual(metrics.route('vault', 'GET', '/console/vaults'), a);
  assert.notEqual(metrics.route('main', 'POST', '/console/vaults'), a);
  assert.notEqual(metrics.route('main', 'GET', '/console/vaults/:name'), a);
  a.record(200, 0.001);
  metrics.route('main', 'GET', '/console/vaults').record(200, 0.002);
  const text = await metrics.render();
  const lines = text.split('\n').filter((l) => l.startsWith('latchkey_http_requests_total{'));
  assert.deepEqual(lines, [
    'latchkey_http_requests_total{app="main",method="GET",route="/console/vaults",status="200"} 2',
  ]);
});
