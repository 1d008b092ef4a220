import { statSync } from 'node:fs'
import { pathToFileURL } from 'node:url'
import type { HayGlobalContext, HayPluginDefinition } from '../types.js'
import { RunnerError } from './errors.js'
import { isRecord, messageOf } from './guards.js'

export type EntryModule = Promise<{ default?: unknown }>

/** Starts importing the plugin's entry; awaited by loadPlugin, so other start-up work overlaps the load. */
export function importEntry(entryPath: string): EntryModule {
  const entry = import(pathToFileURL(entryPath).href) as EntryModule
  entry.catch(() => {}) // a failure is rethrown where it is awaited, in loadPlugin()
  return entry
}

const HOOKS = ['onInitialize', 'onStart', 'onValidateAuth', 'onConfigUpdate', 'onDisable', 'onEnable'] as const

/**
 * As Hay's loader: the default export is a factory (what defineHayPlugin returns), called with the
 * global context, or a definition object. Hooks, when present, must be functions.
 */
export async function loadPlugin(entry: EntryModule, entryPath: string, globalCtx: HayGlobalContext): Promise<HayPluginDefinition> {
  let mod: { default?: unknown }
  try {
    mod = await entry
  } catch (err) {
    // Told apart only on this failure path: a stat up front would cost every start a syscall.
    if (!statSync(entryPath, { throwIfNoEntry: false })?.isFile()) {
      throw new RunnerError('ENTRY_NOT_FOUND', `entry file not found: ${entryPath}`, { cause: err })
    }
    throw new RunnerError('ENTRY_LOAD_FAILED', `cannot import ${entryPath}: ${messageOf(err)}`, { cause: err })
  }
  const exported = mod.default
  if (exported === undefined || exported === null) {
    throw new RunnerError('NO_DEFAULT_EXPORT', `${entryPath} has no default export (export default defineHayPlugin(...))`)
  }
  let definition: unknown = exported
  if (typeof exported === 'function') {
    try {
      definition = await (exported as (ctx: HayGlobalContext) => unknown)(globalCtx)
    } catch (err) {
      throw new RunnerError('INIT_FAILED', `plugin factory threw: ${messageOf(err)}`, { cause: err })
    }
  }
  if (!isRecord(definition)) {
    throw new RunnerError('PLUGIN_INVALID', 'the default export must be defineHayPlugin(factory) or a plugin definition object')
  }
  for (const hook of HOOKS) {
    if (definition[hook] !== undefined && typeof definition[hook] !== 'function') {
      throw new RunnerError('PLUGIN_INVALID', `hook ${hook} must be a function`)
    }
  }
  return definition as HayPluginDefinition
}
