import { createInterface } from 'node:readline';
import { CliError } from './errors.js';

/**
 * Asks a question on the terminal; `hidden` does not echo (passwords). Without a terminal it is a
 * usage error whose line says how to pass the answer instead (`fix`).
 */
export async function ask(question: string, hidden = false, fix?: string): Promise<string> {
  if (!process.stdin.isTTY)
    throw new CliError(
      `${question.replace(/:\s*$/, '')} is required (no terminal to ask on)${fix ? `: ${fix}` : ''}`,
      2,
    );
  const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
  if (hidden) {
    const out = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WriteStream };
    out._writeToOutput = (s: string) => {
      if (s.startsWith(question)) out.output.write(s);
    };
  }
  try {
    return await new Promise<string>((resolve) => rl.question(question, resolve));
  } finally {
    if (hidden) process.stderr.write('\n');
    rl.close();
  }
}

/**
 * The `--yes` (-y) confirmation of a destructive command: asks az's question on the terminal; without
 * a terminal, a usage error (`what` says what would be removed); any answer but y/yes cancels.
 */
export async function confirm(yes: boolean | undefined, what: string): Promise<void> {
  if (yes) return;
  if (!process.stdin.isTTY)
    throw new CliError(`${what}: pass --yes (-y) to confirm (no terminal to ask on)`, 2);
  const answer = await ask(
    'Are you sure you want to perform this operation? (y/n): ',
    false,
    'pass --yes (-y) to delete without asking',
  );
  if (!/^y(es)?$/i.test(answer.trim())) throw new CliError('Operation cancelled.', 1);
}
