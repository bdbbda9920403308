import { isMap, isNode, LineCounter, parseDocument } from 'yaml';
import { LatchkeyError } from '../errors/index.js';
import {
  formatPath,
  type JsonPath,
  type Manifest,
  manifestProblem,
  manifestSchema,
} from './manifest-schema.js';

/** A manifest file parsed (YAML or JSON) with a way to point at the line:column of any JSON path. */
export interface LoadedManifest {
  manifest: Manifest;
  locate(path: JsonPath): string | undefined;
}

function locator(text: string) {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const locate = (path: JsonPath): string | undefined => {
    for (let n = path.length; n >= 0; n--) {
      const head = path.slice(0, n);
      // An unknown key: point at the key itself, not its value.
      if (n > 0 && typeof path[n - 1] === 'string') {
        const parent = n === 1 ? doc.contents : doc.getIn(head.slice(0, -1), true);
        if (isMap(parent)) {
          const pair = parent.items.find(
            (p) => isNode(p.key) && String((p.key as { value?: unknown }).value) === path[n - 1],
          );
          if (pair && isNode(pair.key) && pair.key.range) return pos(pair.key.range[0]);
        }
      }
      const node = n === 0 ? doc.contents : doc.getIn(head, true);
      if (isNode(node) && node.range) return pos(node.range[0]);
    }
    return undefined;
  };
  const pos = (offset: number) => {
    const p = lineCounter.linePos(offset);
    return `${p.line}:${p.col}`;
  };
  return { doc, locate, lineCounter };
}

/**
 * Parses and validates a manifest file. `ManifestInvalid` names the file, the
 * line:column and the JSON path of the first problem.
 */
export function loadManifest(text: string, fileName: string): LoadedManifest {
  const { doc, locate, lineCounter } = locator(text);
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const p = lineCounter.linePos(e.pos[0]);
    throw new LatchkeyError(
      'ManifestInvalid',
      `${fileName}:${p.line}:${p.col}: not valid YAML/JSON: ${e.code}`,
    );
  }
  const data: unknown = doc.toJS();
  const problem = manifestProblem(data);
  if (problem) {
    const at = locate(problem.path);
    throw new LatchkeyError(
      'ManifestInvalid',
      `${fileName}${at ? `:${at}` : ''}: ${formatPath(problem.path)}: ${problem.message}`.slice(0, 400),
    );
  }
  return { manifest: manifestSchema.parse(data), locate };
}

/** Turns `apps[0].identity.type` back into a JSON path. */
export function parsePath(s: string): JsonPath {
  const out: (string | number)[] = [];
  for (const m of s.matchAll(/([^.[\]]+)|\[(\d+)\]/g)) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}
