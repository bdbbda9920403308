import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The directory of Latchkey's own package.json: the checkout, or the installed package. Found by
 * walking up from this module's file, so it is the same from src/, dist/ and the bundle
 * (dist/bundle/, whose chunks sit at another depth than the modules they were built from).
 * Shipped files the code reads or hands on by path (the console's static files, the preload of
 * `latchkey run`) are located from it.
 */
export function packageRoot(): string {
  if (root) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (
      existsSync(manifest) &&
      (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === 'latchkey'
    ) {
      root = dir;
      return dir;
    }
    const up = dirname(dir);
    if (up === dir)
      throw new Error(`Latchkey's package.json was not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** A shipped file's path, from the package root (`packagePath('preload', 'localhost-dns.cjs')`). */
export const packagePath = (...segments: string[]): string => join(packageRoot(), ...segments);
