import { CliError } from './errors.js';

/**
 * One URL path segment from a user's argument (a name, an id, a version; '' for none). Encoded, never a
 * dot-segment: every URL parser (Node's included) resolves `.` and `..` — `%2e%2e` too — to the
 * current or parent path, so `… federated-credential delete --federated-credential-id ..` would
 * otherwise send `DELETE /v1.0/applications/{id}` and delete the application itself.
 */
export function seg(s: string): string {
  const encoded = encodeURIComponent(s);
  refuseDotSegment(encoded, s);
  return encoded;
}

/**
 * Refuses a path segment that a URL parser would resolve (`.`, `..`, or their `%2e` forms, which
 * the WHATWG parser treats alike): for a path the user gives whole, such as a role's `--scope`.
 */
export function refuseDotSegment(segment: string, given: string = segment): void {
  if (/^(\.|%2e){1,2}$/i.test(segment))
    throw new CliError(
      `'${given}' cannot be a name or id: a path's '.' or '..' would address the parent.`,
      2,
    );
}
