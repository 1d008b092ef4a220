import { createRouteTable, type RouteDecl } from '../contract/index.js'

export interface RouteMatcher {
  /** True when the plugin declared a route for this method and path (HEAD falls back to GET). */
  matches(method: string, path: string): boolean
}

/**
 * Compiles a plugin's declared routes once per metadata version, with the matcher our runner serves
 * them with (contract/route-pattern.ts): what passes here is what the runner answers.
 */
export function compileRoutes(routes: readonly RouteDecl[]): RouteMatcher {
  const table = createRouteTable(routes.map(({ method, path }) => ({ method, path, value: true })))
  return { matches: table.has }
}
