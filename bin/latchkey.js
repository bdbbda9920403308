#!/usr/bin/env node
// The `latchkey` command. Runs the TypeScript sources through tsx, so it works
// straight after `npm ci` from the repo root (`npx latchkey ...`).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
