import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { childEnv, REPO_ROOT, startUpProcess, type UpProcess } from './helpers/cli.js';

/**
 * Issue 16: the README's ```sh blocks, run literally (so the README cannot drift again).
 *
 * Every ```sh block is run, in README order, with `bash -euo pipefail` in one temp working
 * dir against a real `latchkey up` this test starts, unless the line right before its fence is
 * `<!-- readme-test: skip (reason) -->`. A block is covered by default: a new one runs unless
 * someone marks it skipped and says why.
 *
 * What the test provides (the whole list of substitutions; the blocks' text is not edited):
 * - `npx`: a shim dir first on PATH whose `npx latchkey ARGS` runs `node <repo>/bin/latchkey.js
 *   ARGS` (any other `npx` call goes to the real npx). The README runs `npx latchkey` from the repo
 *   root, where npm finds the package's own bin; the blocks here run in a temp dir (so
 *   `.latchkey-data` and `server.js` are the test's, not the checkout's), where the real npx would
 *   look the name up in the registry instead.
 * - `.latchkey-data/` in the working dir is the data dir of the `latchkey up` (as `npm start` in
 *   the repo root would make it); the port is a free one, not 8443 (blocks that name 8443 are
 *   skipped). LATCHKEY_CONFIG_DIR points the CLI at that server (its dev-server.json), as a fresh
 *   `latchkey up` does for the user's default config dir.
 * - LATCHKEY_PASSWORD: the admin password from `.latchkey-data/admin-credentials.json`, for the
 *   `login` that would ask for it at a terminal (the README's comment says where it is).
 * - `server.js`: a stand-in for "your program" in `latchkey run ... -- node server.js`; it exits
 *   non-zero unless the managed-identity endpoint and the resolved Key Vault reference are there.
 *
 * The two ```ts blocks (ClientSecretCredential, SecretClient.getSecret) run last as one program
 * (tsx, the @azure/* SDKs of devDependencies) with the substitutions written in that test.
 */

const README = join(REPO_ROOT, 'README.md');
const SKIP = /^<!--\s*readme-test:\s*skip\b\s*(.*?)\s*-->$/;

interface ShBlock {
  /** 1-based line of the opening fence. */
  line: number;
  code: string;
  /** The reason from the skip marker; undefined for a block that runs. */
  skip?: string;
}

/** A marker's reason: the text in its parentheses (or after `skip`). */
const reasonOf = (raw: string): string => raw.replace(/^\((.*)\)$/, '$1').trim();

/** The ```sh blocks of `markdown`, each with its skip marker's reason (if any). */
function shBlocks(markdown: string): { blocks: ShBlock[]; problems: string[] } {
  const lines = markdown.split('\n');
  const blocks: ShBlock[] = [];
  const problems: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,})(\S*)\s*$/.exec(lines[i]!);
    const marker = SKIP.exec(lines[i]!.trim());
    if (marker) {
      const next = lines[i + 1] ?? '';
      if (!/^```sh\s*$/.test(next))
        problems.push(`line ${i + 1}: a skip marker not right before a \`\`\`sh fence`);
      if (!reasonOf(marker[1] ?? '')) problems.push(`line ${i + 1}: a skip marker without a reason`);
      continue;
    }
    if (!fence) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== fence[1]; i++) body.push(lines[i]!);
    if (fence[2] !== 'sh') continue;
    const prev = SKIP.exec((lines[start - 1] ?? '').trim());
    const skip = prev ? reasonOf(prev[1] ?? '') : undefined;
    blocks.push({ line: start + 1, code: body.join('\n'), ...(skip !== undefined ? { skip } : {}) });
  }
  return { blocks, problems };
}

const { blocks, problems } = shBlocks(readFileSync(README, 'utf8'));
const runnable = blocks.filter((b) => b.skip === undefined);

describe('README.md: the ```sh blocks (and the two ```ts blocks)', () => {
  test('every block runs here or is marked skipped with a reason; every marker belongs to a block', () => {
    assert.deepEqual(problems, []);
    assert.ok(blocks.length > 0, 'README has ```sh blocks');
    for (const b of blocks) {
      if (b.skip !== undefined) assert.ok(b.skip.length > 0, `README.md:${b.line}: skipped without a reason`);
    }
    assert.equal(runnable.length + blocks.filter((b) => b.skip).length, blocks.length);
    assert.ok(runnable.length >= 3, 'the first token, the vault and the managed identity blocks run');
  });

  test('the parser: a marker needs a reason and a sh fence right after it', () => {
    const r = shBlocks(
      '<!-- readme-test: skip -->\n```sh\nx\n```\n<!-- readme-test: skip (why) -->\ntext\n```sh\ny\n```\n',
    );
    assert.equal(r.problems.length, 2);
    assert.equal(r.blocks.length, 2);
    assert.equal(r.blocks[1]!.skip, undefined, 'a marker separated from the fence does not skip it');
  });

  test('the skipped `npm ci && npm start|test` blocks: package.json has those scripts and they run what the README says', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    const npmBlocks = blocks.filter((b) => /^npm ci && npm (start|test)$/.test(b.code.trim()));
    assert.deepEqual(
      npmBlocks.map((b) => b.code.trim()),
      ['npm ci && npm start', 'npm ci && npm test'],
    );
    for (const b of npmBlocks) assert.ok(b.skip, `README.md:${b.line}: cannot run inside a test`);
    // `npm start` runs `latchkey up` (the README: "`npm start` runs `latchkey up`").
    assert.match(pkg.scripts.start ?? '', /\bbin\/latchkey\.js up$/);
    // `npm test`: typecheck, lint, tests (the README: "typecheck, lint, tests").
    assert.equal(pkg.scripts.test, 'npm run typecheck && npm run lint && npm run test:unit');
    assert.match(pkg.scripts.typecheck ?? '', /^tsc .*--noEmit$/);
    assert.equal(pkg.scripts.lint, 'biome check .');
    assert.equal(pkg.scripts['test:unit'], 'node scripts/run-tests.mjs');
    // prepare builds dist/ (the README: "the compiled build in dist/ (made by `npm ci`...").
    assert.equal(pkg.scripts.prepare, 'npm run build');
  });

  describe('the runnable blocks, in order, against a real `latchkey up`', () => {
    let work: string;
    let shims: string;
    let up: UpProcess;
    let env: NodeJS.ProcessEnv;
    /** Each block's stdout, in order (the ts blocks use what "Your first token" printed). */
    const outputs: string[] = [];

    before(async () => {
      work = mkdtempSync(join(tmpdir(), 'latchkey-readme-'));
      up = await startUpProcess({ dataDir: join(work, '.latchkey-data'), timeoutMs: 60_000 });
      shims = join(work, '.shims');
      mkdirSync(shims);
      const npx = join(shims, 'npx');
      writeFileSync(
        npx,
        `#!/usr/bin/env bash
# npx latchkey ARGS -> this checkout's CLI; anything else -> the real npx.
if [ "\${1:-}" = latchkey ]; then shift; exec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(REPO_ROOT, 'bin', 'latchkey.js'))} "$@"; fi
PATH=\${PATH#${shims}:} exec npx "$@"
`,
      );
      chmodSync(npx, 0o755);
      writeFileSync(
        join(work, 'server.js'),
        `// stand-in for the README's "node server.js" (the user's program)
if (!process.env.IDENTITY_ENDPOINT || !process.env.IDENTITY_HEADER) { console.error('no identity endpoint'); process.exit(1); }
if (process.env.DB_PASSWORD !== 's3cr3t') { console.error('DB_PASSWORD not resolved'); process.exit(1); }
console.log('server.js: identity endpoint and DB_PASSWORD present');
`,
      );
      const admin = JSON.parse(readFileSync(up.info.adminCredentialsPath, 'utf8')) as { password: string };
      env = {
        ...childEnv(up.configDir, { LATCHKEY_PASSWORD: admin.password }),
        PATH: `${shims}:${process.env.PATH ?? ''}`,
      };
    });
    after(async () => {
      await up?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    for (const b of runnable) {
      const first = b.code.split('\n').find((l) => l.trim() && !l.trim().startsWith('#')) ?? '';
      test(`README.md:${b.line}: ${first.trim().slice(0, 70)}`, { timeout: 60_000 }, async () => {
        const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((res) => {
          execFile(
            'bash',
            ['-euo', 'pipefail', '-c', b.code],
            { cwd: work, env, timeout: 55_000, maxBuffer: 4 * 1024 * 1024 },
            (err, stdout, stderr) => {
              const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
              res({ code, stdout, stderr });
            },
          );
        });
        outputs.push(r.stdout);
        assert.equal(
          r.code,
          0,
          `README.md:${b.line} failed (exit ${r.code});\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`,
        );
      });
    }

    test('the ```ts blocks (ClientSecretCredential, then SecretClient.getSecret) with the app and secret made above', {
      timeout: 60_000,
    }, async () => {
      const ts = [...readFileSync(README, 'utf8').matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
      assert.equal(ts.length, 2, 'the README has two ts blocks');
      assert.match(ts[0]!, /new ClientSecretCredential\(tenantId, appId, password/);
      assert.match(ts[1]!, /client\.getSecret\('db-password'\)/);
      // Substitutions: tenantId/appId/password from `ad sp create`'s output in "Your first token"
      // (my-app, which "Secrets in a vault" made a Key Vault Secrets User on shop); the test
      // server's port for 8443.
      const all = outputs.join('\n');
      const field = (k: string) => new RegExp(`"${k}":\\s*"([^"]+)"`).exec(all)?.[1];
      const [appId, password, tenantId] = [field('appId'), field('password'), field('tenant')];
      assert.ok(appId && password && tenantId, 'ad sp create printed appId, password, tenant');
      const port = new URL(up.info.authority).port;
      const program = [
        `const tenantId = ${JSON.stringify(tenantId)}, appId = ${JSON.stringify(appId)}, password = ${JSON.stringify(password)};`,
        ...ts,
        "if (secret.value !== 's3cr3t') { console.error('wrong secret value'); process.exit(1); }",
        "console.log('ts blocks: got db-password');",
      ]
        .join('\n')
        .replaceAll(':8443', `:${port}`);
      // Under the repo (node_modules/.cache) so the program resolves @azure/* from this checkout.
      const cache = join(REPO_ROOT, 'node_modules', '.cache');
      mkdirSync(cache, { recursive: true });
      const dir = mkdtempSync(join(cache, 'readme-ts-'));
      try {
        const file = join(dir, 'readme.mts');
        writeFileSync(file, program);
        const r = await new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
          execFile(
            process.execPath,
            ['--import', join(REPO_ROOT, 'test', 'fixtures', 'localhost-dns.mjs'), '--import', 'tsx', file],
            {
              cwd: REPO_ROOT,
              env: { ...env, NODE_EXTRA_CA_CERTS: up.info.caCertPath },
              timeout: 55_000,
            },
            (err, stdout, stderr) =>
              res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
          );
        });
        assert.equal(r.code, 0, `the ts blocks failed (exit ${r.code});\nstderr:\n${r.stderr}`);
        assert.match(r.stdout, /got db-password/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});
