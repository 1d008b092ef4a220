import { parseInvocation, USAGE, type Command } from './args.js'
import { createAdminClient, type AdminClient } from './client.js'
import { cliConfig, CliConfigError } from './config.js'
import { CliError } from './errors.js'
import { since, table } from './format.js'

export interface CliIo {
  out(text: string): void
  err(text: string): void
  /** Only for tests; the CLI otherwise reads its environment in cli/config.ts alone. */
  env?: NodeJS.ProcessEnv
  now(): number
  /** Runs the gateway in this process (the `start` command); resolves once it is listening. */
  startGateway(): Promise<void>
  fetch?: typeof fetch
}

/** Runs one command line; returns the exit code (`start` returns 0 once the gateway is up and keeps running). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let json = argv.includes('--json')
  try {
    const { command, flags } = parseInvocation(argv)
    json = flags.json
    if (command.name === 'help') {
      io.out(USAGE)
      return 0
    }
    if (command.name === 'start') {
      await io.startGateway()
      return 0
    }
    const config = cliConfigOrThrow(flags, io.env)
    const client = createAdminClient({ url: config.url, token: config.token, ...(io.fetch && { fetch: io.fetch }) })
    io.out(
      await execute(command, client, json, io.now()).catch((err: unknown) => {
        if (err instanceof CliError) throw err
        // JSON, but not the admin API's: reading it failed (say, --url points at another service).
        throw new CliError('BAD_RESPONSE', `${config.url} gave an answer this CLI does not understand; is it a plugin-gateway?`, {
          cause: err,
        })
      }),
    )
    return 0
  } catch (err) {
    if (!(err instanceof CliError)) throw err
    io.err(json ? JSON.stringify({ error: { code: err.code, message: err.message } }) : `plugin-gateway: ${err.message}`)
    return err.exitCode
  }
}

function cliConfigOrThrow(flags: { url: string | undefined; token: string | undefined }, env: NodeJS.ProcessEnv | undefined) {
  try {
    return env ? cliConfig(flags, env) : cliConfig(flags)
  } catch (err) {
    if (err instanceof CliConfigError) throw new CliError('CONFIG', err.message)
    throw err
  }
}

async function execute(
  command: Exclude<Command, { name: 'help' | 'start' }>,
  client: AdminClient,
  json: boolean,
  now: number,
): Promise<string> {
  const show = (body: unknown, text: () => string) => (json ? JSON.stringify(body, null, 2) : text())
  switch (command.name) {
    case 'plugins': {
      const body = await client.plugins()
      return show(body, () =>
        table(
          ['PLUGIN', 'VERSION', 'SDK', 'METADATA', 'FETCHED', 'ERROR'],
          body.plugins.map((p) => [
            p.id,
            p.version ?? '-',
            p.sdkVersion ?? '-',
            p.valid ? (p.metadataState ?? '-') : 'invalid',
            p.metadataFetchedAt ? `${since(now, p.metadataFetchedAt)} ago` : '-',
            p.error ?? '',
          ]),
        ),
      )
    }
    case 'workers': {
      const body = await client.workers()
      // A cluster's listing names the gateway of each worker, and the peers that did not answer.
      const clustered = body.unreachable !== undefined
      const unreachable = (body.unreachable ?? []).map((p) => `gateway ${p.gatewayId} did not answer: ${p.error}`)
      return show(body, () =>
        [
          body.workers.length === 0
            ? 'no live workers'
            : table(
                [...(clustered ? ['GATEWAY'] : []), 'ORG', 'PLUGIN', 'GEN', 'STATE', 'PID', 'UPTIME', 'IN-FLIGHT', 'LAST ACTIVITY'],
                body.workers.map((w) => [
                  ...(clustered ? [w.gatewayId ?? '-'] : []),
                  w.orgId,
                  w.pluginId,
                  String(w.gen),
                  w.state,
                  w.pid === null ? '-' : String(w.pid),
                  since(now, w.startedAt),
                  String(w.inFlight),
                  w.lastActivityAt ? `${since(now, w.lastActivityAt)} ago` : '-',
                ]),
              ),
          ...unreachable,
        ].join('\n'),
      )
    }
    case 'enable': {
      const body = await client.enable(command.orgId, command.pluginId, command.config)
      return show(body, () => `enabled ${body.pluginId} for ${body.orgId} (runtime ${body.runtimeState})`)
    }
    case 'stop': {
      const body = await client.stop(command.orgId, command.pluginId)
      const key = `${command.orgId}/${command.pluginId}`
      return show(body, () => (body.stopped ? `stopped ${key}` : `${key} had no live worker`))
    }
    case 'refresh': {
      const body = await client.refresh(command.pluginId)
      return show(body, () => `${body.id}: metadata ${body.metadataState ?? '-'}${body.error ? ` (${body.error})` : ''}`)
    }
    case 'rescan': {
      const body = await client.rescan()
      const ids = (list: readonly string[]) => (list.length === 0 ? '-' : list.join(', '))
      return show(body, () =>
        [
          `added: ${ids(body.added)}`,
          `changed: ${ids(body.changed)}`,
          `removed: ${ids(body.removed)}`,
          `invalid: ${ids(body.invalid.map((p) => p.id))}`,
          ...body.invalid.map((p) => `  ${p.id}: ${p.error}`),
        ].join('\n'),
      )
    }
    case 'restart': {
      const body = await client.restart(command.pluginId)
      // In a cluster the count is the asked gateway's; the others roll theirs as they follow.
      return show(body, () => `${body.pluginId}: ${body.workers} live worker${body.workers === 1 ? '' : 's'} rolled`)
    }
  }
}
