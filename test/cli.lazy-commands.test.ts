import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildProgram, COMMAND_MODULES } from '../src/cli/main.js';

// The CLI imports a top-level command's module only when it runs (src/cli/main.ts): the table of
// names must say exactly what each module makes, or a command would be missing when run alone.

describe('CLI: top-level commands load on demand', () => {
  test('each entry of COMMAND_MODULES makes exactly the commands it names, in order', async () => {
    for (const m of COMMAND_MODULES) {
      const made = (await m.load()).map((c) => c.name());
      assert.deepEqual(made, [...m.names]);
    }
  });

  test('the whole program has every command once, in the order of the table', async () => {
    const program = await buildProgram();
    assert.deepEqual(
      program.commands.map((c) => c.name()),
      COMMAND_MODULES.flatMap((m) => m.names),
    );
  });

  test('a command named first is the only one loaded; help, completion and unknown words load all', async () => {
    for (const m of COMMAND_MODULES)
      for (const name of m.names) {
        if (name === 'completion') continue;
        const program = await buildProgram([name, '--help']);
        assert.deepEqual(
          program.commands.map((c) => c.name()),
          [name],
        );
      }
    const all = COMMAND_MODULES.flatMap((m) => m.names).length;
    for (const argv of [[], ['--help'], ['-V'], ['completion', 'bash'], ['no-such-command'], ['-o', 'json']])
      assert.equal((await buildProgram(argv)).commands.length, all, argv.join(' '));
  });
});
