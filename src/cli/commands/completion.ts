import { Command } from 'commander';
import { CliError } from '../errors.js';

/** Every command path and its options, from the program itself (so completion never goes stale). */
function tree(root: Command): Map<string, { subs: string[]; opts: string[] }> {
  const out = new Map<string, { subs: string[]; opts: string[] }>();
  const globals = root.options.map((o) => o.long ?? o.short ?? '').filter(Boolean);
  const walk = (c: Command, path: string) => {
    out.set(path, {
      subs: c.commands.map((s) => s.name()),
      opts: [...c.options.map((o) => o.long ?? o.short ?? '').filter(Boolean), ...globals, '--help'],
    });
    for (const s of c.commands) walk(s, path ? `${path} ${s.name()}` : s.name());
  };
  walk(root, '');
  return out;
}

const quote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

/** A bash/zsh completion function: the words typed so far pick the node of the tree. */
function script(shell: 'bash' | 'zsh', root: Command): string {
  const cases = [...tree(root)]
    .map(([path, { subs, opts }]) => `    ${quote(path)}) words=${quote([...subs, ...opts].join(' '))} ;;`)
    .join('\n');
  const fn = `_latchkey_complete() {
  local cur path="" w i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    case "$w" in -*) continue ;; esac
    case "$(_latchkey_words "\${path:+$path }$w")" in "") ;; *) path="\${path:+$path }$w" ;; esac
  done
  COMPREPLY=( $(compgen -W "$(_latchkey_words "$path")" -- "$cur") )
}
_latchkey_words() {
  local words=""
  case "$1" in
${cases}
  esac
  printf '%s' "$words"
}`;
  return shell === 'bash'
    ? `# latchkey completion (bash): source <(latchkey completion bash)\n${fn}\ncomplete -o default -F _latchkey_complete latchkey\n`
    : `# latchkey completion (zsh): source <(latchkey completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${fn}\ncomplete -o default -F _latchkey_complete latchkey\n`;
}

/** `latchkey completion bash|zsh`: prints a completion script to source. */
export function completionCommand(): Command {
  return new Command('completion')
    .description('Print a shell completion script: source <(latchkey completion bash)')
    .argument('<shell>', 'bash or zsh')
    .addHelpText(
      'after',
      `
Examples:
  echo 'source <(latchkey completion bash)' >> ~/.bashrc
  echo 'source <(latchkey completion zsh)' >> ~/.zshrc`,
    )
    .action((shell: string, _o, cmd: Command) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new CliError('the shell must be bash or zsh', 2);
      let root = cmd;
      while (root.parent) root = root.parent;
      process.stdout.write(script(shell, root));
    });
}
