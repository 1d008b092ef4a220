import { z } from 'zod'
import { parseRoutePattern } from './route-pattern.js'

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

export const RouteDecl = z.looseObject({
  method: z
    .string()
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(HTTP_METHODS)),
  // A path the runner could not serve is invalid metadata, not a route the gateway lets through to a 404.
  path: z.string().superRefine((path, ctx) => {
    const pattern = parseRoutePattern(path)
    if (!pattern.ok) ctx.addIssue({ code: 'custom', message: `is not a route pattern: ${pattern.reason}` })
  }),
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
