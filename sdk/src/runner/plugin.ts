import { pathToFileURL } from 'node:url'
import type { HayGlobalContext, HayPluginDefinition } from '../types.js'
import { messageOf, RunnerError } from './errors.js'

const HOOKS = ['onInitialize', 'onStart', 'onValidateAuth', 'onConfigUpdate', 'onDisable', 'onEnable'] as const

/**
 * Imports the entry and produces the definition the way Hay's loader does: the default export
 * is a factory (what `defineHayPlugin` returns) called with the global context, or a definition
 * object. Hooks, when present, must be functions.
 */
export async function loadPlugin(entryPath: string, globalCtx: HayGlobalContext): Promise<HayPluginDefinition> {
  let mod: { default?: unknown }
  try {
    mod = (await import(pathToFileURL(entryPath).href)) as { default?: unknown }
  } catch (err) {
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
  if (typeof definition !== 'object' || definition === null) {
    throw new RunnerError('PLUGIN_INVALID', 'the default export must be defineHayPlugin(factory) or a plugin definition object')
  }
  for (const hook of HOOKS) {
    const value = (definition as Record<string, unknown>)[hook]
    if (value !== undefined && typeof value !== 'function') {
      throw new RunnerError('PLUGIN_INVALID', `hook ${hook} must be a function`)
    }
  }
  return definition as HayPluginDefinition
}
