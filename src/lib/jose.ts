import type * as Jose from 'jose';

let loading: Promise<typeof Jose> | undefined;

/**
 * jose (~46 modules), imported with the first token verified, client assertion checked or signed,
 * rather than at start (docs/performance.md, cold start). Types come from `import type`.
 */
export function loadJose(): Promise<typeof Jose> {
  loading ??= import('jose').catch((e: unknown) => {
    loading = undefined;
    throw e;
  });
  return loading;
}
