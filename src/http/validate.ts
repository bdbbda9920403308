import type { z } from 'zod';
import { LatchkeyError } from '../errors/index.js';

/** Validates input against a schema; the error names the field and the rule, never the value. */
export function parse<S extends z.ZodType>(schema: S, input: unknown, what = 'request body'): z.infer<S> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.length ? issue.path.join('.') : what;
  throw new LatchkeyError('BadParameter', `Invalid ${path}: ${issue.message}`.slice(0, 300));
}
