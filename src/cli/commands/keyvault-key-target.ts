import type { Command } from 'commander';
import type { Ctx } from '../context.js';
import {
  named as namedObject,
  type Target,
  type TargetOptions,
  target as targetObject,
} from './keyvault-object.js';

export { seg, type Target } from './keyvault-object.js';

/** `--vault-name` + `--name` [+ `--version`], or `--id https://{vault}/keys/{name}[/{version}]`. */
export const target = (c: Ctx, o: TargetOptions): Promise<Target> => targetObject(c, o, 'keys');

export const named = (c: Command, withId = true) => namedObject(c, 'keys', withId);
export const versioned = (c: Command) =>
  named(c).option('--version <version>', 'a key version (default: the latest)');
