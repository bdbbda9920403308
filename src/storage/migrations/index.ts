import type { Migration } from '../port.js';
import { m0001 } from './0001_core.js';
import { m0002 } from './0002_audit.js';
import { m0003 } from './0003_access.js';

/** Every migration, in order. Add new ones at the end with the next version number. */
export const ALL_MIGRATIONS: readonly Migration[] = [m0001, m0002, m0003];
