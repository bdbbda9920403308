import { closeSync, fchmodSync, openSync, writeFileSync } from 'node:fs';

/**
 * Writes a file only its owner can read (0600), also when it already exists
 * with a looser mode (a `mode` given to writeFileSync applies only to a new
 * file). The mode is set before the first byte is written.
 */
export function writePrivateFile(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, 'w', 0o600);
  try {
    fchmodSync(fd, 0o600);
    writeFileSync(fd, data);
  } finally {
    closeSync(fd);
  }
}
