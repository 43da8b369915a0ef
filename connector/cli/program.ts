// Commands and flags only: each action reads its options into one configuration and hands it to one function of cli/.
import { redactSecrets } from '../observe/secret-values.ts';
import { Command, CommanderError, Option } from 'commander';
import { contentTypes } from '../../contract/content-types.ts';
import { describeFailure, exitCodes } from './exit-codes.ts';
import { runCommand } from './run.ts';
import { showStatus } from './status.ts';
import { manageSubscriptions, type SubscriptionVerb } from './subscriptions.ts';
import { testConnection } from './test.ts';
import { runConfigurationOf, type CommandName, type RunConfiguration } from '../config/run-config.ts';
import { parseSetting, settingNames, settingRange, settingSpecs, type SettingName } from '../config/settings.ts';

/** A setting's option from the table: flag, help (commander adds the default), and its schema as the parser. */
function settingOption(name: SettingName): Option {
  const spec = settingSpecs[name];
  return new Option(`--${spec.flag} <${spec.unit}>`, `${spec.help} (${settingRange(name)})`).default(spec.default).argParser((value: string) => parseSetting(name, value));
}
const globalSettings = settingNames.filter((name) => 'global' in settingSpecs[name]);
const runSettings = settingNames.filter((name) => !globalSettings.includes(name));

const contentTypesHelp = `comma-separated content types (default: O365_CONTENT_TYPES, the outputs' contentTypes, or all: ${contentTypes.join(', ')})`;
const stateHelp = 'state directory, or a PostgreSQL URL (postgres://user@host/db) that a fleet of workers shares (default: O365_STATE_DIR or ./.o365-state)';

const program = new Command('o365-connector')
  .description('Stream Microsoft 365 audit logs from the Office 365 Management Activity API to your SIEM.\n'
    + 'Configuration, highest precedence first: flags, O365_* environment variables, --outputs file, --stack.')
  .exitOverride()
  // Commander's own errors (unknown option, missing value, bad choice) become one line below, with the fix.
  .configureOutput({ outputError: () => {} })
  .configureHelp({ showGlobalOptions: true })
  .addOption(new Option('--outputs <file>', 'configuration: a file holding `pulumi stack output --json --show-secrets`').env('O365_OUTPUTS_FILE'))
  .option('--stack <name>', 'read the configuration from this Pulumi stack (runs `pulumi stack output --json --show-secrets`; needs the Pulumi CLI)')
  .option('--credential <kind>', 'how to sign in: secret, certificate, federated (a workload\'s OIDC token, from AZURE_FEDERATED_TOKEN_FILE) or managedIdentity (the Azure host\'s); default: O365_CREDENTIAL, else the secret or certificate in the environment, else the outputs\' credential (a clientCertificatePath added to them first), else federated when AZURE_FEDERATED_TOKEN_FILE is set')
  .option('--federated-token-file <path>', 'credential federated: the file holding the OIDC token, read for every token request (default: the outputs\' federatedTokenFile, else AZURE_FEDERATED_TOKEN_FILE)')
  .addOption(new Option('--proxy <url>', 'forward proxy for the calls to Microsoft (default: HTTPS_PROXY; NO_PROXY applies); credentials in the URL or O365_PROXY_USERNAME/O365_PROXY_PASSWORD').env('O365_PROXY'))
  .addOption(new Option('--log-level <level>', 'level of the JSON logs on stderr (debug also prints stack traces of internal errors)').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).env('O365_LOG_LEVEL'))
  .addHelpText('after', '\nExit codes: 0 ok, 1 internal, 2 configuration, 3 authentication (AADSTS), 4 API (AF…), 5 network/TLS, 6 sink;\n`status`: 0 Active, 10 Degraded, 11 Inactive; 130 stopped by a second SIGINT/SIGTERM.');

// Global because test, status and subscriptions build the API client too.
for (const name of globalSettings) program.addOption(settingOption(name));

/** The one place an error becomes a line on stderr and an exit code. */
function act(name: CommandName, action: (config: RunConfiguration) => Promise<number>, command: Command): Promise<void> {
  const options = command.optsWithGlobals() as { logLevel?: string };
  return Promise.resolve().then(() => action(runConfigurationOf(name, options, { env: process.env, stderrIsTTY: process.stderr.isTTY }))).then(
    (exitCode) => { process.exitCode = exitCode; },
    (error: unknown) => {
      const { line, exitCode } = describeFailure(error);
      process.stderr.write(`${redactSecrets(line)}\n`);
      if (options.logLevel === 'debug' || options.logLevel === 'trace') {
        if (error instanceof Error && error.stack) process.stderr.write(`${redactSecrets(error.stack)}\n`);
      }
      process.exitCode = exitCode;
    },
  );
}

program.command('test')
  .description('acquire a token and list subscriptions: prints "Connection successful <time>", or the Microsoft error code, what it means and the setup step that fixes it; then checks each sink given (file appendable, receiver reachable, TLS, credentials, write permission), one line each')
  .option('--sink <spec>', 'a sink to check as run will use it (repeatable; default: O365_SINKS)', (value: string, previous: string[]) => [...previous, value], [] as string[])
  .addOption(new Option('--tenants <dir>', 'check every tenant whose outputs file is a *.json in this directory (fleet mode), one line each').env('O365_TENANTS_DIR'))
  .action((_options: object, command: Command) => act('test', (config) => testConnection(config), command));

const subscriptions = program.command('subscriptions').description('start, stop or list the Management Activity API subscriptions (idempotent)');
for (const verb of ['start', 'stop', 'list'] as const satisfies readonly SubscriptionVerb[]) {
  const sub = subscriptions.command(verb)
    .description(verb === 'list' ? 'list every content type and its subscription status' : `${verb} the subscriptions of the configured content types (idempotent)`);
  if (verb !== 'list') sub.option('--content-types <list>', contentTypesHelp);
  sub.action((_options: object, command: Command) => act('subscriptions', (config) => manageSubscriptions(verb, config), command));
}

const run = program.command('run')
  .description('start the needed subscriptions, then stream every audit record to the sinks (SIGINT/SIGTERM: flush, save state, exit 0)')
  .option('--once', 'deliver everything available now, save state and exit')
  .option('--emit-health', 'also write connector health records into the sinks (RecordType O365ConnectorHealth: content expired, content listed late, subscription disabled, throttled)')
  .option('--since <time>', 'first run only: how far back to start, an ISO time or a duration such as 90m, 36h, 7d (the API keeps 7 days)', '7d')
  .option('--sink <spec>', 'where records go: stdout, file:<path>, or a SIEM sink (repeatable; every sink must acknowledge; default: O365_SINKS, else stdout)', (value: string, previous: string[]) => [...previous, value], [] as string[])
  .option('--state <dir>', stateHelp)
  .option('--content-types <list>', contentTypesHelp)
  .addOption(new Option('--tenants <dir>', 'fleet mode: collect every tenant whose outputs file (`pulumi stack output --json --show-secrets`) is a *.json in this directory; files added, changed or removed are picked up while running').env('O365_TENANTS_DIR'))
  .addOption(new Option('--worker-name <name>', 'this worker\'s name in a fleet sharing one --state database (default: the host name); status shows which worker holds what').env('O365_WORKER_NAME'))
  .addOption(new Option('--listen <host:port>', 'serve the status page (/), Prometheus /metrics, /livez and /readyz over HTTP on this address (e.g. 127.0.0.1:9464)').env('O365_LISTEN'))
  .addOption(new Option('--listen-token-env <VAR>', 'the environment variable holding a token that every --listen path but /livez and /readyz asks for (Authorization: Bearer, or a browser\'s password prompt)').env('O365_LISTEN_TOKEN_ENV'));
for (const name of runSettings) run.addOption(settingOption(name));
run.action((_options: object, command: Command) => act('run', (config) => runCommand(config), command));

program.command('status')
  .description('per content type: subscription, checkpoint, lag, records delivered, expired content, last error; overall Active/Degraded/Inactive (exit 0/10/11)')
  .option('--state <dir>', stateHelp)
  .option('--json', 'machine-readable JSON instead of the table')
  .option('--offline', 'report from the state directory only, without asking the API for the live subscription list')
  .addOption(new Option('--tenants <dir>', 'a fleet\'s tenants directory: tenants are shown by domain, and every *.json of it a worker cannot use is reported (Degraded while one is)').env('O365_TENANTS_DIR'))
  .action((_options: object, command: Command) => act('status', (config) => showStatus(config), command));

/** A command-line mistake commander found, as one line naming the fix; help asked for is no error. */
function usageFailure(error: CommanderError): { line: string; exitCode: number } {
  if (error.exitCode === 0) return { line: '', exitCode: 0 };
  if (error.code === 'commander.help' || error.code === 'commander.helpDisplayed') return { line: '', exitCode: exitCodes.config };
  const command = program.commands.find((c) => process.argv.slice(2).includes(c.name()))?.name();
  const message = error.message.replace(/^error: /, '').split('\n').map((part) => part.trim()).filter(Boolean).join(' ').replace(/\.$/, '');
  return { line: `error: CONFIG_INVALID: ${message}. Fix: see \`o365-connector ${command ? `${command} ` : ''}--help\``, exitCode: exitCodes.config };
}

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const { line, exitCode } = error instanceof CommanderError ? usageFailure(error) : describeFailure(error);
  if (line) process.stderr.write(`${redactSecrets(line)}\n`);
  process.exitCode = exitCode;
}
