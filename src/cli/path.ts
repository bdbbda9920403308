import { CliError } from './errors.js';

/**
 * One URL path segment from a user's argument (a name, an id, a version; '' for none). Encoded, never a
 * dot-segment: every URL parser (Node's included) resolves `.` and `..` — `%2e%2e` too — to the
 * current or parent path, so `… federated-credential delete --federated-credential-id ..` would
 * otherwise send `DELETE /v1.0/applications/{id}` and delete the application itself.
 */
export function seg(s: string): string {
  const encoded = encodeURIComponent(s);
  if (/^(\.|%2e){1,2}$/i.test(encoded))
    throw new CliError(`'${s}' cannot be a name or id: a path's '.' or '..' would address the parent.`, 2);
  return encoded;
}
