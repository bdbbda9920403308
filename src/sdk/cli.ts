import { spawn } from 'node:child_process';
import { createTokenCache, withRefresh } from './cache.js';
import { AuthenticationError, CredentialUnavailableError } from './errors.js';
import { type AccessToken, type GetTokenOptions, type TokenCredential, toScope } from './types.js';

export interface CliCredentialOptions {
  /** The CLI to run: argv prefix (default: LATCHKEY_CLI split on spaces, else `latchkey`). */
  command?: string[];
  /** Environment of the CLI process (default: this process's). */
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * The developer's `latchkey login`, like AzureCliCredential: runs
 * `latchkey account get-access-token --scope ... --output json` and reads
 * `accessToken` and `expires_on`. The CLI keeps and refreshes its own login.
 */
export class LatchkeyCliCredential implements TokenCredential {
  private readonly cached: (scope: string) => Promise<AccessToken>;
  private readonly command: string[];

  constructor(private readonly options: CliCredentialOptions = {}) {
    const env = options.env ?? process.env;
    this.command =
      options.command ?? (env.LATCHKEY_CLI ? env.LATCHKEY_CLI.split(' ').filter(Boolean) : ['latchkey']);
    this.cached = createTokenCache((scope) => this.fetch(scope));
  }

  async getToken(scopes: string | string[], _options?: GetTokenOptions): Promise<AccessToken> {
    return this.cached(toScope(scopes));
  }

  private fetch(scope: string): Promise<AccessToken> {
    if (!/^[\x21-\x7e]{1,512}$/.test(scope)) return Promise.reject(new TypeError('invalid scope'));
    const [cmd, ...prefix] = this.command;
    const args = [...prefix, 'account', 'get-access-token', '--scope', scope, '--output', 'json'];
    const issuedAt = Date.now();
    return new Promise((resolve, reject) => {
      const child = spawn(cmd!, args, {
        env: this.options.env ?? process.env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), this.options.timeoutMs ?? 30_000);
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        err += c.toString();
      });
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(
          new CredentialUnavailableError(
            e.code === 'ENOENT'
              ? `the latchkey CLI is not installed (${cmd} not found)`
              : `cannot run ${cmd}: ${e.message}`,
          ),
        );
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const firstLine =
          err
            .trim()
            .split('\n')[0]
            ?.replace(/^ERROR:\s*/, '') ?? '';
        if (code !== 0) {
          if (/not logged in|login/i.test(firstLine) || !firstLine)
            return reject(
              new CredentialUnavailableError(`not logged in (run \`latchkey login\`): ${firstLine}`.trim()),
            );
          return reject(new AuthenticationError(`the CLI failed: ${firstLine.slice(0, 300)}`));
        }
        try {
          const j = JSON.parse(out) as { accessToken?: string; expires_on?: number };
          if (!j.accessToken || typeof j.expires_on !== 'number') throw new Error('missing fields');
          resolve(withRefresh(j.accessToken, j.expires_on * 1000, issuedAt));
        } catch {
          reject(new AuthenticationError('the CLI answered with unexpected output'));
        }
      });
    });
  }
}
