import { statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import type { HayGlobalContext, HayPluginDefinition } from '../types.js'
import { importModule } from './dynamic-import.js'
import { RunnerError } from './errors.js'
import { isRecord, messageOf } from './guards.js'

type EntryNamespace = { default?: unknown }
export type EntryModule = Promise<EntryNamespace>

/**
 * Loads the plugin's entry (ES module or CommonJS) for loadPlugin, which awaits it. Where Node can
 * require() an ES module (20.19+, 22.12+), it is required: on Node 20 the first import() starts the
 * asynchronous ESM loader, which cost a cold start ~10 ms more than require() (BENCHMARKS.md). An entry
 * whose graph has top-level await cannot be required (nothing of it has run then): it is imported.
 */
export function importEntry(entryPath: string): EntryModule {
  const entry = process.features.require_module ? requireEntry(entryPath) : undefined
  const loaded = entry ?? (importModule(pathToFileURL(entryPath).href) as EntryModule)
  loaded.catch(() => {}) // a failure is rethrown where it is awaited, in loadPlugin()
  return loaded
}

/** The entry as import() would give it, or undefined when only import() can load it. */
function requireEntry(entryPath: string): EntryModule | undefined {
  let exported: unknown
  try {
    exported = createRequire(entryPath)(entryPath)
  } catch (err) {
    if ((err as { code?: unknown } | null)?.code === 'ERR_REQUIRE_ASYNC_MODULE') return undefined
    return Promise.reject(err)
  }
  // require() gives an ES module's namespace, and a CommonJS module's exports, which import() gives as `default`.
  return Promise.resolve(isNamespace(exported) ? exported : { default: exported })
}

const isNamespace = (value: unknown): value is EntryNamespace => Object.prototype.toString.call(value) === '[object Module]'

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
