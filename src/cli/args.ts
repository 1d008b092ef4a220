import { parseArgs } from 'node:util'
import { OrgId, PluginId } from '../contract/index.js'
import { CliError } from './errors.js'

export type Command =
  | { name: 'help' }
  | { name: 'start' }
  | { name: 'plugins' }
  | { name: 'workers' }
  | { name: 'enable'; orgId: string; pluginId: string; config: Record<string, unknown> | undefined }
  | { name: 'stop'; orgId: string; pluginId: string }
  | { name: 'refresh'; pluginId: string }
  | { name: 'rescan' }
  | { name: 'restart'; pluginId: string }

export interface Invocation {
  command: Command
  flags: { url: string | undefined; token: string | undefined; json: boolean }
}

export const USAGE = `Usage: plugin-gateway <command> [options]

Commands:
  start                               run the gateway (configured by its environment, see README)
  plugins                             list plugins with their metadata state
  workers                             list live workers
  enable <org> <plugin> [--config k=v ...]
                                      enable a plugin for an org; k=v sets a string, k:=<json> any JSON value
  stop <org> <plugin>                 stop the org's worker of a plugin
  refresh <plugin>                    mark a plugin's metadata stale and fetch it again
  rescan                              scan the plugin directories again: add, upgrade and remove plugins live
  restart <plugin>                    replace every worker of a plugin (new requests reach new workers)

Options:
  --url <url>      gateway base URL (env GATEWAY_URL, default http://127.0.0.1:8787)
  --token <token>  admin token (env ADMIN_TOKEN)
  --json           print the API's JSON instead of a table
  -h, --help       show this help`

const ARITY: Record<string, number> = { start: 0, plugins: 0, workers: 0, enable: 2, stop: 2, refresh: 1, rescan: 0, restart: 1 }

function parseFlags(argv: readonly string[]) {
  try {
    return parseArgs({
      args: [...argv],
      allowPositionals: true,
      strict: true,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        json: { type: 'boolean', default: false },
        config: { type: 'string', multiple: true },
        help: { type: 'boolean', short: 'h', default: false },
      },
    })
  } catch (err) {
    throw new CliError('USAGE', (err as Error).message)
  }
}

export function parseInvocation(argv: readonly string[]): Invocation {
  const { values, positionals } = parseFlags(argv)
  const flags = { url: values.url, token: values.token, json: values.json ?? false }
  const [name, ...args] = positionals
  if (values.help || name === undefined || name === 'help') return { command: { name: 'help' }, flags }

  const arity = ARITY[name]
  if (arity === undefined) throw new CliError('USAGE', `unknown command "${name}" (try --help)`)
  if (args.length !== arity)
    throw new CliError('USAGE', `${name} takes ${arity === 0 ? 'no arguments' : `${arity} argument${arity > 1 ? 's' : ''}`} (try --help)`)
  if (values.config && name !== 'enable') throw new CliError('USAGE', '--config is for the enable command')
  if (name === 'start' && (values.url !== undefined || values.token !== undefined || values.json)) {
    throw new CliError('USAGE', 'start takes no options: the gateway reads its own environment (see README, Configuration)')
  }

  switch (name) {
    case 'start':
    case 'plugins':
    case 'workers':
    case 'rescan':
      return { command: { name }, flags }
    case 'refresh':
    case 'restart':
      return { command: { name, pluginId: id('plugin', args[0]) }, flags }
    case 'stop':
      return { command: { name, orgId: id('org', args[0]), pluginId: id('plugin', args[1]) }, flags }
    default:
      return {
        command: {
          name: 'enable',
          orgId: id('org', args[0]),
          pluginId: id('plugin', args[1]),
          config: values.config && configOf(values.config),
        },
        flags,
      }
  }
}

function id(kind: 'org' | 'plugin', value: string | undefined): string {
  const parsed = (kind === 'org' ? OrgId : PluginId).safeParse(value)
  if (!parsed.success) throw new CliError('USAGE', `invalid ${kind} id "${value}": ids match [a-z0-9][a-z0-9_-]{0,63}`)
  return parsed.data
}

/** `k=v` is the string v; `k:=json` is a parsed JSON value (numbers, booleans, objects). */
function configOf(pairs: readonly string[]): Record<string, unknown> {
  const config: Record<string, unknown> = {}
  for (const pair of pairs) {
    const m = /^([^=:]+)(:?)=(.*)$/s.exec(pair)
    if (!m?.[1]) throw new CliError('USAGE', `--config expects key=value or key:=<json>, got "${pair}"`)
    const [, key, isJson, raw = ''] = m
    if (!isJson) {
      config[key] = raw
      continue
    }
    try {
      config[key] = JSON.parse(raw)
    } catch {
      throw new CliError('USAGE', `--config ${key}:= needs a JSON value, got ${raw === '' ? 'nothing' : `"${raw}"`}`)
    }
  }
  return config
}
