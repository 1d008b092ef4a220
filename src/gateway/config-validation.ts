import { z } from 'zod'
import type { ConfigField, ConfigSchema } from '../contract/index.js'
import { GatewayError } from '../core/index.js'
import type { InstanceConfig } from '../db/index.js'

const FIELD_VALUE: Record<ConfigField['type'], z.ZodType> = {
  string: z.string(),
  number: z.number(),
  boolean: z.boolean(),
  json: z.unknown(),
}

/**
 * Validates an org's config against the plugin's declared configSchema (CONTRACT.md §3):
 * known keys only, declared types, required fields present unless they have a default.
 */
export function validateConfig(schema: ConfigSchema, config: InstanceConfig): InstanceConfig {
  const shape: Record<string, z.ZodType> = {}
  for (const [name, field] of Object.entries(schema)) {
    const value = FIELD_VALUE[field.type]
    const optional = !field.required || (field.default !== undefined && field.default !== null)
    shape[name] = optional ? value.optional().nullable() : value
  }
  const parsed = z.strictObject(shape).safeParse(config)
  if (!parsed.success) {
    throw new GatewayError('CONFIG_INVALID', 400, 'config does not match the plugin configSchema', {
      details: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    })
  }
  return config
}
