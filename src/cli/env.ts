import { Command, type Option } from "commander";
import { UsageError } from "./usage.js";

/**
 * Every flag can come from the environment, as NETSYNC_ and its long name
 * (`--master` → NETSYNC_MASTER, `--token-file` → NETSYNC_TOKEN_FILE), so a
 * script or a unit file sets them once. A flag given on the command line
 * wins. Named once here, from the flags themselves, so a flag added later
 * gets its variable too (EnvCommand below).
 */
export const ENV_PREFIX = "NETSYNC_";

/** Read by logger.ts itself (the library honours them too), so commander must not parse them again. */
const OWN_ENV = new Set(["version", "log-level", "log-format"]);

export function envName(option: Option): string {
  return `${ENV_PREFIX}${option.name().replace(/-/g, "_").toUpperCase()}`;
}

/**
 * A Command whose options, and its subcommands' options, get their NETSYNC_
 * variable as they are added: commander wires an option's variable up when
 * the option is added, so setting it afterwards would not take.
 */
export class EnvCommand extends Command {
  override createCommand(name?: string): Command {
    return new EnvCommand(name);
  }

  override addOption(option: Option): this {
    if (!OWN_ENV.has(option.name()) && option.envVar === undefined) option.env(envName(option));
    return super.addOption(option);
  }
}

/**
 * commander turns a switch (--json, --all) on whenever its variable is set,
 * even to "0" or "false": refuse those rather than do the opposite of what
 * they say.
 */
export function checkSwitchEnvironment(command: Command, env: NodeJS.ProcessEnv = process.env): void {
  for (const option of command.options) {
    if (option.required || option.optional || option.envVar === undefined) continue;
    if (command.getOptionValueSource(option.attributeName()) !== "env") continue;
    const value = env[option.envVar] ?? "";
    if (/^(|0|false|no|off)$/i.test(value))
      throw new UsageError(`${option.envVar}=${value} would turn ${option.long} on: set it to 1 to turn it on, unset it to leave it off`);
  }
}
