import type { Command, Option } from "commander";

/*
 * `netsync completion bash|zsh`: a completion script made from the program's
 * own commands and flags, so it never falls behind them. zsh runs the bash
 * function through bashcompinit, as npm's own completion does: one script to
 * keep right, not two.
 */

export const SHELLS = ["bash", "zsh"] as const;
export type Shell = (typeof SHELLS)[number];

const longFlags = (options: readonly Option[]) => options.map((o) => o.long).filter((f): f is string => f !== undefined);

/** A bash word list, quoted for a double-quoted string (flag names and choices hold no quotes or `$`). */
const words = (list: string[]) => list.join(" ");

export function completionScript(program: Command, shell: Shell): string {
  const commands = program.commands.filter((c) => c.name() !== "help");
  const globalFlags = [...longFlags(program.options), "--help"];
  // Flags that take a value: the word after one is its value, not the command.
  const valueFlags = longFlags(program.options.filter((o) => o.required || o.optional));
  const choices = [program, ...commands].flatMap((c) =>
    c.options.filter((o) => o.argChoices && o.long).map((o) => `    ${o.long}) words="${words(o.argChoices!)}" ;;`),
  );
  const perCommand = commands.map((c) => {
    const args = c.registeredArguments.flatMap((a) => a.argChoices ?? []);
    return `    ${c.name()}) words="${words([...args, ...longFlags(c.options), "--help"])}" ;;`;
  });
  const bash = `# netsync completion for ${shell}; load it with: source <(netsync completion ${shell})
_netsync() {
  local cur=\${COMP_WORDS[COMP_CWORD]} prev=\${COMP_WORDS[COMP_CWORD-1]} cmd="" words="" i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case \${COMP_WORDS[i]} in
      ${valueFlags.join("|")}) ((i++)) ;;
      -*) ;;
      *) cmd=\${COMP_WORDS[i]}; break ;;
    esac
  done
  case $prev in
${choices.join("\n")}
  esac
  if [[ -z $words ]]; then
    case $cmd in
      "") words="${words([...commands.map((c) => c.name()), ...globalFlags])}" ;;
${perCommand.join("\n")}
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _netsync netsync
`;
  return shell === "bash" ? bash : `#compdef netsync\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
