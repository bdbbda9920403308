import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { childEnv, REPO_ROOT } from './helpers/cli.js';

const exec = promisify(execFile);
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/**
 * Issue 16 item 4: the package as users install it (`npm pack` → `npm install latchkey-*.tgz`),
 * outside the repository: the CLI runs from dist/ without tsx or src/, and the SDK export
 * `latchkey/identity` resolves. SLOW (~40 s: the install copies the runtime dependencies from
 * npm's cache). Needs the build (`npm run build`, which `npm ci` runs); skipped without it.
 */
describe('the packed tarball, installed into a project outside the repository (slow: ~40 s)', () => {
  const built = existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'));
  let tmp: string;
  let proj: string;
  let files: string[];

  before(async () => {
    if (!built) return;
    tmp = mkdtempSync(join(tmpdir(), 'latchkey-pack-'));
    // --ignore-scripts: the tarball of the build already there (prepare would rebuild it).
    const packed = await exec(
      npm,
      ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp, REPO_ROOT],
      {
        cwd: tmp,
        maxBuffer: 16 * 1024 * 1024,
      },
    );
    const info = JSON.parse(packed.stdout) as { filename: string; files: { path: string }[] }[];
    files = info[0]!.files.map((f) => f.path);
    proj = join(tmp, 'consumer');
    mkdirSync(proj);
    writeFileSync(join(proj, 'package.json'), '{"name":"consumer","private":true,"type":"module"}\n');
    // --ignore-scripts: no native build of better-sqlite3 (neither --version nor the SDK loads it).
    await exec(
      npm,
      [
        'install',
        '--prefer-offline',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        join(tmp, info[0]!.filename),
      ],
      { cwd: proj, timeout: 240_000, maxBuffer: 16 * 1024 * 1024 },
    );
  });
  after(() => {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  test('the tarball holds the build, the launcher and the console assets; no TypeScript sources or tests', {
    skip: !built && 'no dist/: run npm run build',
  }, () => {
    assert.ok(files.includes('dist/cli/main.js'), "files.includes('dist/cli/main.js')");
    assert.ok(
      files.includes('dist/sdk/index.js') && files.includes('dist/sdk/index.d.ts'),
      "files.includes('dist/sdk/index.js') && files.includes('dist/sdk/index.d.ts')",
    );
    assert.ok(files.includes('bin/latchkey.js'), "files.includes('bin/latchkey.js')");
    // The bundle the launcher runs (scripts/bundle.mjs), without the index only the tests read.
    assert.ok(files.includes('dist/bundle/main.js'), "files.includes('dist/bundle/main.js')");
    assert.ok(!files.includes('dist/bundle/modules.json'), "!files.includes('dist/bundle/modules.json')");
    assert.ok(
      files.includes('src/console/static/console.css'),
      "files.includes('src/console/static/console.css')",
    );
    assert.deepEqual(
      files.filter(
        (f) => /^(test|bench|deploy|scripts)\//.test(f) || (f.endsWith('.ts') && !f.endsWith('.d.ts')),
      ),
      [],
    );
  });

  test('latchkey --version and --help run from the installed package (dist only)', {
    skip: !built && 'no dist/: run npm run build',
  }, async () => {
    assert.equal(existsSync(join(proj, 'node_modules', 'latchkey', 'src', 'cli')), false);
    const cfg = join(tmp, 'cfg');
    const env = childEnv(cfg);
    const bin = join(proj, 'node_modules', '.bin', 'latchkey');
    const v = await exec(bin, ['--version'], { cwd: proj, env });
    assert.equal(v.stdout.trim(), '0.1.0');
    const h = await exec(bin, ['keyvault', 'secret', 'set', '--help'], { cwd: proj, env });
    assert.match(h.stdout, /--vault-name/);
    const bad = await exec(bin, ['account', 'show'], { cwd: proj, env }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal((bad as { code: number }).code, 1);
    assert.match((bad as { stderr: string }).stderr, /^ERROR: not logged in/);
    assert.ok(
      readdirSync(join(proj, 'node_modules', 'latchkey')).includes('dist'),
      "readdirSync(join(proj, 'node_modules', 'latchkey')).includes('dist')",
    );
  });

  test("`latchkey run`'s localhost preload ships, at the path the installed CLI hands Node workloads", {
    skip: !built && 'no dist/: run npm run build',
  }, async () => {
    assert.ok(files.includes('preload/localhost-dns.cjs'), "files.includes('preload/localhost-dns.cjs')");
    // The path dist/cli/commands/run.js computes, in the installed package: NODE_OPTIONS
    // --require of a missing file would stop every Node workload `latchkey run` starts.
    const run = join(proj, 'node_modules', 'latchkey', 'dist', 'cli', 'commands', 'run.js');
    const r = await exec(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const m = await import(${JSON.stringify(`file://${run}`)}); const fs = await import('node:fs'); console.log(JSON.stringify([m.LOCALHOST_DNS_PRELOAD, fs.existsSync(m.LOCALHOST_DNS_PRELOAD)]));`,
      ],
      { cwd: proj, env: childEnv(join(tmp, 'cfg')) },
    );
    const [path, exists] = JSON.parse(r.stdout) as [string, boolean];
    assert.ok(path.startsWith(join(proj, 'node_modules', 'latchkey')), path);
    assert.equal(exists, true, `${path} exists`);
  });

  test("import('latchkey/identity') from the consumer project", {
    skip: !built && 'no dist/: run npm run build',
  }, async () => {
    const r = await exec(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        "const m = await import('latchkey/identity'); console.log(typeof m.DefaultLatchkeyCredential, typeof m.LatchkeyCliCredential);",
      ],
      { cwd: proj, env: childEnv(join(tmp, 'cfg')) },
    );
    assert.equal(r.stdout.trim(), 'function function');
  });
});
