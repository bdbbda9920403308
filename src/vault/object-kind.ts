import { LatchkeyError } from '../errors/index.js';
import { isObjectName, VERSION_RE } from './model.js';
import type { ObjectOperation } from './object-guard.js';

/**
 * What secrets, keys and certificates say alike, written once: the name and version rules
 * of a URL, Azure's errors for an absent, deleted or taken object, and the operations of
 * the shared lifecycle (objects.ts). Each kind's own files name it ('secret', 'key',
 * 'certificate') and keep what differs.
 */
export type ObjectNoun = 'secret' | 'key' | 'certificate';
const TITLE = { secret: 'Secret', key: 'Key', certificate: 'Certificate' } as const;

const bad = (message: string) => new LatchkeyError('BadParameter', message);

/** The rules and errors of one kind, in Azure's words (`Secret` in codes and operation names). */
export function objectKindRules(noun: ObjectNoun) {
  const Noun = TITLE[noun];
  return {
    /** A name from a URL: 1–127 letters, digits and hyphens. */
    checkName(name: string): string {
      if (!isObjectName(name))
        throw bad(`The ${noun} name is invalid: use 1–127 letters, digits and hyphens.`);
      return name;
    },
    /** A version from a URL: 32 hex characters (compared lower-case). */
    checkVersion(version: string): string {
      if (!VERSION_RE.test(version))
        throw bad(`The ${noun} version is invalid: it is 32 hexadecimal characters.`);
      return version.toLowerCase();
    },
    notFound: (name: string, version?: string) =>
      new LatchkeyError(
        `${Noun}NotFound`,
        `A ${noun} with (name/id) ${name}${version ? `/${version}` : ''} was not found in this key vault. If you recently deleted this ${noun} you may be able to recover it using the correct recovery command.`,
      ),
    deletedNotFound: (name: string) =>
      new LatchkeyError(`${Noun}NotFound`, `Deleted ${Noun} not found: ${name}`),
    /** A new version while the name is held by a deleted object. */
    deletedConflict: (name: string) =>
      new LatchkeyError(
        'Conflict',
        `${Noun} ${name} is currently in a deleted but recoverable state, and its name cannot be reused; in this state, the ${noun} can only be recovered or purged.`,
      ),
    /** A restore into a name that is taken. */
    restoreConflict: (name: string) =>
      new LatchkeyError(
        'Conflict',
        `${Noun} ${name} already exists in this vault (or is deleted and recoverable); it cannot be restored over.`,
      ),
  };
}
export type ObjectKindRules = ReturnType<typeof objectKindRules>;

/**
 * The operations of the shared lifecycle (list, versions, delete, deleted objects, recover,
 * purge) as Azure names them for a kind: `${Noun}List`, … ; `base` is the kind's RBAC data
 * action prefix, `read` the data action of its metadata reads.
 */
export function lifecycleOperations(Noun: (typeof TITLE)[ObjectNoun], base: string, read: string) {
  return {
    list: { op: `${Noun}List`, action: read, perm: 'list' },
    versions: { op: `${Noun}ListVersions`, action: read, perm: 'list' },
    delete: { op: `${Noun}Delete`, action: `${base}/delete`, perm: 'delete' },
    listDeleted: { op: `${Noun}ListDeleted`, action: read, perm: 'list' },
    getDeleted: { op: `${Noun}GetDeleted`, action: read, perm: 'get' },
    recover: { op: `${Noun}Recover`, action: `${base}/recover/action`, perm: 'recover' },
    purge: { op: `${Noun}Purge`, action: `${base}/purge/action`, perm: 'purge' },
  } satisfies Record<string, ObjectOperation>;
}

/** A kind's operation `${Noun}${Verb}` on data action `${base}/${verb}/action` with permission `verb` (backup, restore, …). */
export const actionOperation = (Noun: string, base: string, verb: string): ObjectOperation => ({
  op: `${Noun}${verb[0]!.toUpperCase()}${verb.slice(1)}`,
  action: `${base}/${verb}/action`,
  perm: verb,
});
