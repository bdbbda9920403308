import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { packagePath } from '../lib/package-root.js';

/** One static file of the console, read once at start-up and served from memory. */
export interface Asset {
  body: Buffer;
  type: string;
  /** Content hash: the `?v=` of the URL, so a changed file is a new URL (cached for a year). */
  version: string;
  url: string;
}

function load(name: string, type: string): Asset {
  // From the package root, so the compiled build and its bundle serve the same files as src/console/.
  const body = readFileSync(packagePath('src', 'console', 'static', name));
  const version = createHash('sha256').update(body).digest('base64url').slice(0, 12);
  return { body, type, version, url: `/console/static/${name}?v=${version}` };
}

let cache: Record<'css' | 'js', Asset> | undefined;

/** The stylesheet and the progressive-enhancement script (src/console/static/). */
export function consoleAssets(): Record<'css' | 'js', Asset> {
  cache ??= {
    css: load('console.css', 'text/css; charset=utf-8'),
    js: load('console.js', 'text/javascript; charset=utf-8'),
  };
  return cache;
}
