/**
 * The CLI's own stderr lines besides errors, as az has them: `--only-show-errors` hides
 * warnings, `--verbose` adds one line per HTTP request, `--debug` adds the resolved
 * server and config dir too. No line ever holds a header value, a body, a token, a
 * secret or a password: request lines carry the method, the URL (secret-looking query
 * parameters redacted), the status and the time taken.
 */
export type Verbosity = 'quiet' | 'normal' | 'verbose' | 'debug';

let level: Verbosity = 'normal';

export const setVerbosity = (v: Verbosity): void => {
  level = v;
};
export const verbosity = (): Verbosity => level;

/** A warning (hidden by `--only-show-errors`). */
export function warn(line: string): void {
  if (level !== 'quiet') process.stderr.write(`${line}\n`);
}

/** A `--verbose` / `--debug` line. */
export function info(line: string, min: 'verbose' | 'debug' = 'verbose'): void {
  if (level === 'debug' || (level === 'verbose' && min === 'verbose'))
    process.stderr.write(`${min === 'debug' ? 'DEBUG' : 'INFO'}: ${line}\n`);
}

const SECRET_PARAM = /secret|token|password|assertion|key|code|sig|credential/i;

/** The URL for a log line: no user info, secret-looking query values replaced by `REDACTED`. */
export function loggableUrl(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  for (const k of [...u.searchParams.keys()]) if (SECRET_PARAM.test(k)) u.searchParams.set(k, 'REDACTED');
  return u.toString();
}
