// Cold start of `latchkey up` on an existing data dir: from spawning the
// process to its JSON ready line (what a developer or a CI job waits for).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { median, row, type Scenario, spawnUp } from '../lib.js';

const scenario: Scenario = {
  name: 'cold-start',
  description: '`latchkey up` from process spawn to ready, on an existing data dir',
  async run(ctx) {
    const tmp = ctx.tmpDir('latchkey-bench-cold-');
    const dataDir = join(tmp, 'data');
    const configDir = join(tmp, 'config');
    ctx.log('  first start (creates the data dir, keys, CA, tenant) …');
    const first = await spawnUp(dataDir, configDir);
    await first.stop();
    ctx.record(
      row({ scenario: 'cold-start', metric: 'first start (new data dir)', value: first.readyMs, unit: 'ms' }),
    );
    const samples: number[] = [];
    for (let i = 0; i < ctx.options.repeats; i++) {
      const p = await spawnUp(dataDir, configDir);
      samples.push(p.readyMs);
      const code = await p.stop();
      if (code !== 0) throw new Error(`latchkey up exited with ${code} on SIGTERM:\n${p.stderr()}`);
    }
    ctx.log(`  restarts: ${samples.map((s) => s.toFixed(0)).join(', ')} ms`);
    // Same-run baseline: a bare Node process, spawned and exited (what any Node program pays).
    const bare: number[] = [];
    for (let i = 0; i < ctx.options.repeats; i++) {
      const t0 = performance.now();
      spawnSync(process.execPath, ['-e', ''], { stdio: 'ignore' });
      bare.push(performance.now() - t0);
    }
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: `bare node start (median of ${bare.length})`,
        value: median(bare),
        unit: 'ms',
      }),
    );
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: `restart to ready (median of ${samples.length})`,
        value: median(samples),
        unit: 'ms',
        baseline: median(bare),
        target: '< 1000',
      }),
    );
    ctx.record(
      row({
        scenario: 'cold-start',
        metric: 'restart to ready (max)',
        value: Math.max(...samples),
        unit: 'ms',
      }),
    );
  },
};

export default scenario;
