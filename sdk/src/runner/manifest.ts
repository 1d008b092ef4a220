import { readFileSync, statSync } from 'node:fs'
import { basename, isAbsolute, join, relative, resolve } from 'node:path'
import { messageOf, RunnerError } from './errors.js'

export interface LoadedManifest {
  /** Plugin id: the directory's name (CONTRACT.md §1). */
  pluginId: string
  pluginDir: string
  displayName: string
  entryPath: string
  /** The manifest's `env` allow-list: the only host variables config fields may fall back to. */
  envAllowList: ReadonlySet<string>
}

/**
 * Reads `hay-plugin` from the plugin's package.json. Only what running needs is checked
 * (an object with a string `entry` inside the plugin directory, an existing entry file); the
 * gateway's catalog validates the rest of the manifest.
 */
export function loadManifest(pluginPathArg: string): LoadedManifest {
  const pluginPath = resolve(pluginPathArg)
  const file = join(pluginPath, 'package.json')

  let pkg: unknown
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    throw new RunnerError('MANIFEST_INVALID', `cannot read ${file}: ${messageOf(err)}`, { cause: err })
  }
  const block = isRecord(pkg) ? pkg['hay-plugin'] : undefined
  if (!isRecord(block)) throw new RunnerError('MANIFEST_INVALID', `${file} has no "hay-plugin" object`)
  const entry = block['entry']
  if (typeof entry !== 'string' || entry === '') {
    throw new RunnerError('MANIFEST_INVALID', `${file}: "hay-plugin".entry must be a non-empty string`)
  }

  const entryPath = resolve(pluginPath, entry)
  const rel = relative(pluginPath, entryPath)
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) {
    throw new RunnerError('MANIFEST_INVALID', `entry ${entry} is outside the plugin directory`)
  }
  let isFile = false
  try {
    isFile = statSync(entryPath).isFile()
  } catch {
    // A missing entry is reported below with the same code as a directory.
  }
  if (!isFile) throw new RunnerError('ENTRY_NOT_FOUND', `entry file not found: ${entryPath}`)

  const env = block['env']
  const displayName = block['displayName']
  return {
    pluginId: basename(pluginPath),
    pluginDir: pluginPath,
    displayName: typeof displayName === 'string' ? displayName : basename(pluginPath),
    entryPath,
    envAllowList: new Set(Array.isArray(env) ? env.filter((v): v is string => typeof v === 'string') : []),
  }
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)
