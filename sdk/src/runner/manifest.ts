import { readFileSync } from 'node:fs'
import { basename, join, resolve, sep } from 'node:path'
import { RunnerError } from './errors.js'
import { isRecord, messageOf } from './guards.js'

export interface Manifest {
  /** Plugin id: the directory's name (CONTRACT.md §1). */
  pluginId: string
  pluginDir: string
  displayName: string
  entryPath: string
  /** `hay-plugin.env`: the only host variables config fields may fall back to. */
  envAllowList: ReadonlySet<string>
}

/**
 * `hay-plugin` from the plugin's package.json. Only what running needs is checked (an object with
 * a string `entry` inside the plugin directory); the gateway validates the rest.
 */
export function loadManifest(pluginPath: string): Manifest {
  const pluginDir = resolve(pluginPath)
  const file = join(pluginDir, 'package.json')
  let pkg: unknown
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new RunnerError('MANIFEST_INVALID', `cannot read ${file}: ${messageOf(err)}`, { cause: err })
  }
  const block = isRecord(pkg) ? pkg['hay-plugin'] : undefined
  if (!isRecord(block)) throw new RunnerError('MANIFEST_INVALID', `${file} has no "hay-plugin" object`)
  const entry = block.entry
  if (typeof entry !== 'string' || entry === '') {
    throw new RunnerError('MANIFEST_INVALID', `${file}: "hay-plugin".entry must be a non-empty string`)
  }
  const entryPath = resolve(pluginDir, entry)
  if (!entryPath.startsWith(pluginDir + sep)) {
    throw new RunnerError('MANIFEST_INVALID', `entry ${entry} is outside the plugin directory`)
  }
  const env = block.env
  const displayName = block.displayName
  return {
    pluginId: basename(pluginDir),
    pluginDir,
    displayName: typeof displayName === 'string' ? displayName : basename(pluginDir),
    entryPath,
    envAllowList: new Set(Array.isArray(env) ? env.filter((v): v is string => typeof v === 'string') : []),
  }
}
