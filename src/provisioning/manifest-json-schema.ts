import { z } from 'zod';
import { manifestSchema } from './manifest-schema.js';

/** The JSON Schema (2020-12) of a manifest file, for editors and CI linters. */
export function manifestJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(manifestSchema),
    $id: 'https://latchkey.localhost/schemas/manifest.schema.json',
    title: 'Latchkey provisioning manifest (latchkey/v1)',
  };
}
