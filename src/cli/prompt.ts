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
