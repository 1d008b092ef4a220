import { RegExpRouter } from 'hono/router/reg-exp-router'
import { SmartRouter } from 'hono/router/smart-router'
import { TrieRouter } from 'hono/router/trie-router'
import { z } from 'zod'

// CONTRACT.md §3: the shape a worker's GET /metadata returns (and a legacy v1 manifest embeds).
export const CONFIG_FIELD_TYPES = ['string', 'number', 'boolean', 'json'] as const

export const ConfigField = z.looseObject({
  type: z.enum(CONFIG_FIELD_TYPES),
  label: z.string().optional(),
  description: z.string().optional(),
  required: z.boolean().optional(),
  encrypted: z.boolean().optional(),
  env: z.string().optional(),
  default: z.unknown().optional(),
})
export type ConfigField = z.infer<typeof ConfigField>

export const ConfigSchema = z.record(z.string().min(1), ConfigField)
export type ConfigSchema = z.infer<typeof ConfigSchema>

const ApiKeyAuth = z.looseObject({
  type: z.literal('apiKey'),
  id: z.string().min(1),
  label: z.string(),
  configField: z.string().optional(),
})
const OAuth2Auth = z.looseObject({
  type: z.literal('oauth2'),
  id: z.string().min(1),
  label: z.string(),
  authorizationUrl: z.string(),
  tokenUrl: z.string(),
  scopes: z.array(z.string()).default([]),
  clientId: z.string().optional(),
  clientSecret: z.string().optional(),
})
export const AuthMethod = z.discriminatedUnion('type', [ApiKeyAuth, OAuth2Auth])
export type AuthMethod = z.infer<typeof AuthMethod>

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const
export type HttpMethod = (typeof HTTP_METHODS)[number]

/**
 * The router declared paths are matched with (registry/route-matcher.ts): hono's default, one RegExp
 * over all routes and the trie for the patterns a RegExp cannot express.
 */
export const createRouteRouter = () => new SmartRouter<true>({ routers: [new RegExpRouter(), new TrieRouter()] })

/** A pattern that router cannot compile (`/:id{[}`) would throw on every request: invalid metadata. */
function compilesAsRoute(path: string): boolean {
  try {
    const router = createRouteRouter()
    router.add('GET', path, true)
    router.match('GET', '/')
    return true
  } catch {
    return false
  }
}

export const RouteDecl = z.looseObject({
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(HTTP_METHODS)),
  path: z.string().startsWith('/').refine(compilesAsRoute, 'is not a route pattern the gateway can match (check its {regex} parts)'),
})
export type RouteDecl = z.infer<typeof RouteDecl>

export const Metadata = z.object({
  configSchema: ConfigSchema.default({}),
  authMethods: z.array(AuthMethod).default([]),
  uiExtensions: z.array(z.looseObject({ slot: z.string(), component: z.string() })).default([]),
  pages: z.array(z.unknown()).default([]),
  routes: z.array(RouteDecl).default([]),
  mcp: z
    .object({ local: z.array(z.unknown()).default([]), external: z.array(z.unknown()).default([]) })
    .default({ local: [], external: [] }),
})
export type Metadata = z.infer<typeof Metadata>
