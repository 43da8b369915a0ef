// Commands and flags only: each action wires configuration -> credentials -> API client -> collector -> sinks.
import { Command, InvalidArgumentError, Option } from 'commander';
import { contentTypes } from './api/content-types.ts';
import { parseSince } from './config/config.ts';
import { describeFailure, exitCodes } from './commands/exit-codes.ts';
import { createRuntime, type GlobalFlags } from './commands/runtime.ts';
import { runConnector } from './pipeline/run-connector.ts';
import { createSink } from './sinks/spec.ts';
import { buildStatusReport, formatStatusReport } from './status/status-report.ts';
import { createLogger } from './status/log.ts';
import { resolve } from 'node:path';

function positiveInteger(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new InvalidArgumentError('must be a positive whole number');
  return parsed;
}

const program = new Command('o365-connector')
  .description('Stream Microsoft 365 audit logs from the Office 365 Management Activity API to your SIEM')
  .showHelpAfterError()
  .addOption(new Option('--outputs <file>', 'connector configuration: `pulumi stack output --json --show-secrets` saved to a file').env('O365_OUTPUTS_FILE'))
  .option('--stack <name>', 'read the outputs of this Pulumi stack directly (needs the Pulumi CLI)')
  .addOption(new Option('--log-level <level>', 'log level for the JSON logs on stderr').choices(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).env('O365_LOG_LEVEL'))
  .option('--requests-per-minute <n>', 'request budget against the tenant quota (about 2,000/min)', positiveInteger)
  .option('--max-in-flight <n>', 'concurrent API requests at most', positiveInteger);

function globals(command: Command): GlobalFlags {
  return command.optsWithGlobals() as GlobalFlags;
}

async function act(action: () => Promise<number>): Promise<void> {
  try {
    process.exitCode = await action();
  } catch (error) {
    const { line, exitCode } = describeFailure(error);
    process.stderr.write(line + '\n');
    if (process.env['O365_LOG_LEVEL'] === 'debug' && error instanceof Error && error.stack) process.stderr.write(error.stack + '\n');
    process.exitCode = exitCode;
  }
}

program.command('test')
  .description('acquire a token and list subscriptions: prints "Connection successful" or what is wrong and how to fix it')
  .action((_options, command: Command) => act(async () => {
    const runtime = await createRuntime(globals(command));
    try {
      await runtime.tokens.getToken();
      const subscriptions = await runtime.api.listSubscriptions();
      const enabled = subscriptions.filter((s) => s.status === 'enabled').map((s) => s.contentType);
      process.stdout.write(`Connection successful ${new Date().toISOString()} tenant ${runtime.config.tenantId}; enabled subscriptions: ${enabled.length ? enabled.join(', ') : 'none yet (run `subscriptions start`)'}\n`);
      return exitCodes.ok;
    } finally {
      await runtime.close();
    }
  }));

const subscriptions = program.command('subscriptions').description('start, stop or list the Management Activity API subscriptions');
for (const verb of ['start', 'stop', 'list'] as const) {
  subscriptions.command(verb)
    .description(verb === 'list' ? 'list subscriptions and their status' : `${verb} subscriptions (idempotent)`)
    .option('--content-types <list>', `comma-separated, default: the configuration's (${contentTypes.join(', ')})`)
    .action((options: { contentTypes?: string }, command: Command) => act(async () => {
      const runtime = await createRuntime({ ...globals(command), contentTypes: options.contentTypes });
      try {
        if (verb === 'list') {
          const list = await runtime.api.listSubscriptions();
          for (const type of contentTypes) {
            const entry = list.find((s) => s.contentType === type);
            process.stdout.write(`${type.padEnd(28)} ${entry?.status ?? 'not started'}\n`);
          }
          return exitCodes.ok;
        }
        for (const type of runtime.config.contentTypes) {
          if (verb === 'start') await runtime.api.startSubscription(type);
          else await runtime.api.stopSubscription(type).catch((error: { code?: string }) => { if (error.code !== 'AF20022') throw error; });
          process.stdout.write(`${type.padEnd(28)} ${verb === 'start' ? 'enabled' : 'disabled'}\n`);
        }
        return exitCodes.ok;
      } finally {
        await runtime.close();
      }
    }));
}

program.command('run')
  .description('start the needed subscriptions, then stream every audit record to the sinks')
  .option('--once', 'drain everything available up to now, flush, save state and exit')
  .option('--since <time>', 'first run only: start this far back (ISO time or 90m/36h/7d; at most 7 days)', '7d')
  .option('--sink <spec>', 'stdout | file:<path> (repeatable: every sink must acknowledge)', (value: string, previous: string[]) => [...previous, value], [] as string[])
  .option('--state <dir>', 'state directory (default ./.o365-state or O365_STATE_DIR)')
  .option('--content-types <list>', 'comma-separated content types')
  .option('--poll-interval <seconds>', 'seconds between passes when not --once', positiveInteger, 60)
  .option('--fetch-concurrency <n>', 'blobs fetched ahead, at most', positiveInteger, 8)
  .option('--overlap <minutes>', 'minutes behind the checkpoint listed again for late blobs', positiveInteger, 240)
  .action((options: { once?: boolean; since: string; sink: string[]; state?: string; contentTypes?: string; pollInterval: number; fetchConcurrency: number; overlap: number }, command: Command) => act(async () => {
    const since = parseSince(options.since, new Date());
    const runtime = await createRuntime({ ...globals(command), contentTypes: options.contentTypes, state: options.state });
    const controller = new AbortController();
    const stop = () => controller.abort(new Error('stopped by signal'));
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    try {
      const sinks = (options.sink.length ? options.sink : ['stdout']).map((spec) => createSink(spec, { env: process.env, telemetry: runtime.telemetry, logger: runtime.logger }));
      for (const type of runtime.config.contentTypes) await runtime.api.startSubscription(type, { abortSignal: controller.signal });
      const summary = await runConnector({
        api: runtime.api, contentTypes: runtime.config.contentTypes, since, once: Boolean(options.once), stateDir: runtime.config.stateDir,
        sinks, telemetry: runtime.telemetry, logger: runtime.logger, abortSignal: controller.signal,
        pollIntervalMs: options.pollInterval * 1000, fetchConcurrency: options.fetchConcurrency, overlapMs: options.overlap * 60_000,
      });
      runtime.logger.info({ summary: { records: summary.records, blobs: summary.blobs, duplicates: summary.duplicates, expired: summary.expired, errors: summary.errors.length } }, 'run finished');
      if (summary.errors.length > 0 && options.once) {
        process.stderr.write(`error: ${summary.errors[0]!.message}\n`);
        return exitCodes.api;
      }
      return exitCodes.ok;
    } finally {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      await runtime.close();
    }
  }));

program.command('status')
  .description('per content type: subscription, checkpoint, lag, records delivered, expired content, last error; overall Active/Degraded/Inactive')
  .option('--state <dir>', 'state directory (default ./.o365-state or O365_STATE_DIR)')
  .option('--json', 'machine-readable output')
  .option('--offline', 'do not ask the API for the live subscription list')
  .action((options: { state?: string; json?: boolean; offline?: boolean }, command: Command) => act(async () => {
    const flags = globals(command);
    let stateDir = resolve(options.state ?? process.env['O365_STATE_DIR'] ?? '.o365-state');
    let live;
    if (!options.offline) {
      try {
        const runtime = await createRuntime({ ...flags, state: options.state });
        stateDir = runtime.config.stateDir;
        try { live = await runtime.api.listSubscriptions(); } finally { await runtime.close(); }
      } catch (error) {
        createLogger(flags.logLevel ? { level: flags.logLevel } : {}).warn({ err: describeFailure(error).line }, 'live subscription list unavailable; reporting from state only');
      }
    }
    const report = await buildStatusReport({ stateDir, ...(live ? { subscriptions: live } : {}) });
    process.stdout.write(options.json ? JSON.stringify(report, null, 2) + '\n' : formatStatusReport(report));
    return report.overall === 'Active' ? exitCodes.ok : report.overall === 'Degraded' ? exitCodes.degraded : exitCodes.inactive;
  }));

await program.parseAsync(process.argv);
