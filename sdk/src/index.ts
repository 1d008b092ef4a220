import type { HayPluginDefinition, HayPluginFactory } from './types.js'

export type * from './types.js'

/**
 * Declares a plugin. The entry module default-exports the result; the runner calls the factory
 * with the plugin-global context, as Hay's runner does. A plain definition object is accepted too.
 *
 * Deliberately an identity function: this module is on every worker's cold-start path, so it
 * must not pull in anything else (validation happens in the runner).
 */
export function defineHayPlugin(factory: HayPluginFactory): HayPluginFactory
export function defineHayPlugin(definition: HayPluginDefinition): HayPluginDefinition
export function defineHayPlugin(factoryOrDefinition: HayPluginFactory | HayPluginDefinition): HayPluginFactory | HayPluginDefinition {
  return factoryOrDefinition
}
