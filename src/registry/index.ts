export { createRegistry } from './registry.js'
export type { CatalogChanges, InvalidPlugin, PluginView, Registry, RegistryDeps } from './registry.js'
export { compileRoutes } from './route-matcher.js'
export type { RouteMatcher } from './route-matcher.js'
