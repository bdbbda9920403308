import { readFileSync, realpathSync } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import { Command, Option } from 'commander';
import { isLatchkeyError } from '../../errors/index.js';
import { formatPath, type Manifest } from '../../provisioning/manifest-schema.js';
import { ctx, print } from '../context.js';
import { CliError } from '../errors.js';
import { writePrivateFile } from '../files.js';
import { warn } from '../log.js';
import { api, provisioningKey } from '../session.js';
import { loadProfile } from '../state.js';

/**
 * Variables that hold the credentials a runner signs in with (this CLI's, the Azure SDKs',
 * GitHub Actions' OIDC request token, the managed-identity endpoint's header): never a `fromEnv`.
 */
const CREDENTIAL_VARIABLES = new Set([
  'LATCHKEY_PASSWORD',
  'LATCHKEY_PROVISIONING_KEY',
  'LATCHKEY_ROOT_KEY',
  'LATCHKEY_STORAGE_URL',
  'AZURE_CLIENT_SECRET',
  'AZURE_PASSWORD',
  'AZURE_CLIENT_CERTIFICATE_PASSWORD',
  'IDENTITY_HEADER',
  'MSI_SECRET',
  'ACTIONS_ID_TOKEN_REQUEST_TOKEN',
  'ACTIONS_RUNTIME_TOKEN',
  'GITHUB_TOKEN',
  'CI_JOB_TOKEN',
  'CI_JOB_JWT',
  'CI_JOB_JWT_V2',
  'CI_REGISTRY_PASSWORD',
  'SYSTEM_ACCESSTOKEN',
]);

/**
 * The credentials this CLI signs in with now (the provisioning key, the password, the login's
 * client secret and refresh token): a `fromFile` or `fromEnv` value that holds one is refused,
 * whatever the variable or file is called (a pipeline may keep its key in a second variable).
 */
function ownCredentials(): string[] {
  const out: string[] = [];
  try {
    const key = provisioningKey();
    if (key) out.push(key);
  } catch {}
  const password = process.env.LATCHKEY_PASSWORD;
  if (password) out.push(password);
  const p = loadProfile();
  if (p?.clientSecret) out.push(p.clientSecret);
  if (p?.refreshToken) out.push(p.refreshToken);
  return out.filter((c) => c.length >= 8);
}

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
  const own = ownCredentials();
  const secrets = (manifest.secrets ?? []).map((s, i) => {
    const v = s.value;
    if (!v || s.state === 'absent') return s;
    if ('fromFile' in v) {
      const at = where(['secrets', i, 'value', 'fromFile']);
      let path: string;
      try {
        path = realpathSync(resolve(dirname(file), v.fromFile));
      } catch {
        throw new CliError(`${at}: cannot read the file`);
      }
      // Only files in the manifest's directory or below it (links followed): whoever edits a
      // manifest that CI applies must not copy the runner's other files into a vault.
      const root = realpathSync(dirname(resolve(file)));
      if (path !== root && !path.startsWith(root.endsWith(sep) ? root : `${root}${sep}`))
        throw new CliError(`${at}: the file must be in the manifest's directory or below it`);
      // Nor git's own files (actions/checkout keeps the job's token in .git/config).
      if (path.slice(root.length).split(sep).includes('.git'))
        throw new CliError(`${at}: files under .git cannot be a secret's value`);
      let value: string;
      try {
        value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
      } catch {
        throw new CliError(`${at}: cannot read the file`);
      }
      if (own.some((c) => value.includes(c)))
        throw new CliError(`${at}: the file holds a credential this CLI signs in with`);
      return { ...s, value: { resolved: value } };
    }
    if ('fromEnv' in v) {
      // Not the credentials the runner itself signs in with: a manifest's author could otherwise
      // copy them into a vault they may read.
      if (CREDENTIAL_VARIABLES.has(v.fromEnv.toUpperCase()))
        throw new CliError(
          `${where(['secrets', i, 'value', 'fromEnv'])}: ${v.fromEnv} holds a credential of the runner itself and cannot be a secret's value`,
        );
      const value = process.env[v.fromEnv];
      if (value === undefined)
        throw new CliError(`${where(['secrets', i, 'value', 'fromEnv'])}: ${v.fromEnv} is not set`);
      if (own.some((c) => value.includes(c)))
        throw new CliError(
          `${where(['secrets', i, 'value', 'fromEnv'])}: ${v.fromEnv} holds a credential this CLI signs in with`,
        );
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
