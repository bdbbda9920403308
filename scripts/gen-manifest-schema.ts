/**
 * Writes schemas/manifest.schema.json from the zod schema of the provisioning
 * manifest (src/provisioning/manifest-schema.ts). Run after changing it:
 *   node --import tsx scripts/gen-manifest-schema.ts
 * test/manifest-schema.test.ts fails when the file is stale.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { manifestJsonSchema } from '../src/provisioning/manifest-json-schema.js';

const out = fileURLToPath(new URL('../schemas/manifest.schema.json', import.meta.url));
writeFileSync(out, `${JSON.stringify(manifestJsonSchema(), null, 2)}\n`);
// As `npm run lint` wants it (biome keeps short arrays on one line).
execFileSync('npx', ['biome', 'format', '--write', out], { stdio: 'ignore' });
process.stdout.write(`wrote ${out}\n`);
