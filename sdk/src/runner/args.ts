import { RunnerError } from './errors.js'

export interface RunnerArgs {
  pluginPath: string
  orgId: string
  port: number
  mode: 'production' | 'test'
}

const FLAGS = ['--plugin-path', '--org-id', '--port', '--mode']

/**
 * Hay's argv (CONTRACT.md §2): `--plugin-path=… --org-id=… --port=… [--mode=production|test]`;
 * `--flag value` works too. Unknown arguments are rejected, as Hay's runner does. Port 0 asks the OS
 * for a free port; the ready message then carries the real one.
 */
export function parseArgs(argv: readonly string[]): RunnerArgs {
  const values = new Map<string, string>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    const eq = arg.indexOf('=')
    const name = eq === -1 ? arg : arg.slice(0, eq)
    if (!FLAGS.includes(name)) throw new RunnerError('BAD_ARGS', `unknown argument: ${arg}`)
    // Split on the first '=' only: a path may itself contain '='.
    const value = eq === -1 ? argv[++i] : arg.slice(eq + 1)
    if (!value) throw new RunnerError('BAD_ARGS', `${name} requires a value`)
    values.set(name, value)
  }
  const pluginPath = values.get('--plugin-path')
  const orgId = values.get('--org-id')
  const portText = values.get('--port')
  if (!pluginPath) throw new RunnerError('BAD_ARGS', 'missing required argument: --plugin-path')
  if (!orgId) throw new RunnerError('BAD_ARGS', 'missing required argument: --org-id')
  if (!portText) throw new RunnerError('BAD_ARGS', 'missing required argument: --port')
  const port = Number(portText)
  if (!/^\d+$/.test(portText) || port > 65_535) throw new RunnerError('BAD_ARGS', `invalid port: ${portText}`)
  const mode = values.get('--mode') ?? 'production'
  if (mode !== 'production' && mode !== 'test') throw new RunnerError('BAD_ARGS', `invalid mode: ${mode} (expected production or test)`)
  return { pluginPath, orgId, port, mode }
}
