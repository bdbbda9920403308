import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Command, Option } from 'commander';
import { isLatchkeyError } from '../../errors/index.js';
import { formatPath, type Manifest } from '../../provisioning/manifest-schema.js';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { writePrivateFile } from '../files.js';
import { warn } from '../log.js';
import { api } from '../session.js';

/** Reads the file, validates it, and resolves `fromFile` / `fromEnv` secret values on this side. */
async function prepare(file: string): Promise<{
  body: Manifest;
  locate: (p: readonly (string | number)[]) => string | undefined;
}> {
  // Loaded on use (the YAML parser): keeps `latchkey up` and other commands quick to start.
  const { loadManifest } = await import('../../provisioning/manifest-load.js');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let loaded: ReturnType<typeof loadManifest>;
  try {
    loaded = loadManifest(text, file);
  } catch (e) {
    if (isLatchkeyError(e)) throw new CliError(`ManifestInvalid: ${e.message}`);
    throw e;
  }
  const { manifest, locate } = loaded;
  const where = (path: (string | number)[]) => `${file}:${locate(path) ?? '?'}: ${formatPath(path)}`;
  const secrets = (manifest.secrets ?? []).map((s, i) => {
    const v = s.value;
    if (!v || s.state === 'absent') return s;
    if ('fromFile' in v) {
      try {
        const value = readFileSync(resolve(dirname(file), v.fromFile), 'utf8').replace(/\r?\n$/, '');
        return { ...s, value: { resolved: value } };
      } catch {
        throw new CliError(`${where(['secrets', i, 'value', 'fromFile'])}: cannot read the file`);
      }
    }
    if ('fromEnv' in v) {
      const value = process.env[v.fromEnv];
      if (value === undefined)
        throw new CliError(`${where(['secrets', i, 'value', 'fromEnv'])}: ${v.fromEnv} is not set`);
      return { ...s, value: { resolved: value } };
    }
    if ('resolved' in v)
      throw new CliError(
        `${where(['secrets', i, 'value'])}: 'resolved' is not for files: use fromFile/fromEnv`,
      );
    return s;
  });
  return { body: { ...manifest, ...(manifest.secrets ? { secrets } : {}) }, locate };
}

/** `latchkey apply -f FILE [--dry-run]` and `latchkey export [-g RG] [-f OUT]`. */
export function manifestCommands(): Command[] {
  const apply = new Command('apply')
    .description('Apply a provisioning manifest (YAML/JSON): create or update what differs, all or nothing')
    .requiredOption('-f, --file <path>', 'the manifest file')
    .option('--dry-run', 'show the plan without changing anything')
    .action(async (o: { file: string; dryRun?: boolean }, cmd: Command) => {
      const c = ctx(cmd);
      const { body, locate } = await prepare(o.file);
      const { parsePath } = await import('../../provisioning/manifest-load.js');
      try {
        const r = await api<{ plan: unknown[] }>(
          c,
          'POST',
          `/api/provisioning/apply?dryRun=${o.dryRun ? 'true' : 'false'}`,
          body,
        );
        print(c, r.plan);
      } catch (e) {
        // Server errors name a JSON path `(at a.b[0])`: add the file position.
        const m = e instanceof CliError ? /\(at ([^)]+)\)/.exec(e.message) : null;
        const at = m ? locate(parsePath(m[1]!)) : undefined;
        if (e instanceof CliError && at) throw new CliError(`${o.file}:${at}: ${e.message}`);
        throw e;
      }
    });
  const exp = new Command('export')
    .description('Export a resource group as a manifest (YAML; secrets without values)')
    .option('-g, --resource-group <name>', 'resource group (default: default)')
    .option('-f, --file <path>', 'write to this file instead of stdout')
    .addOption(
      new Option('--secret-values <how>', 'placeholders for secret values')
        .choices(['generate', 'env'])
        .default('generate'),
    )
    .action(async (o: { resourceGroup?: string; file?: string; secretValues: string }, cmd: Command) => {
      const c = ctx(cmd);
      const q = new URLSearchParams({ secretValues: o.secretValues, report: 'true' });
      if (o.resourceGroup) q.set('resourceGroup', o.resourceGroup);
      const { manifest: m, skipped } = await api<{
        manifest: unknown;
        skipped: { what: string; reason: string }[];
      }>(c, 'GET', `/api/provisioning/export?${q}`);
      // What the caller may not read is left out, not fatal: say so on stderr (exit 0).
      for (const x of skipped) warn(`WARNING: skipped ${x.what} (${x.reason})`);
      const { stringify } = await import('yaml'); // loaded on use: keeps `latchkey up` quick to start
      const text = stringify(m);
      if (o.file) writePrivateFile(o.file, text);
      else process.stdout.write(text);
    });
  return [apply, exp];
}
