// ctx.config and ctx.auth, as the hooks, routes and tools see them.
import type { AuthState, ConfigFieldDescriptor, HayAuthRuntimeAPI, HayConfigRuntimeAPI, HayLogger } from '../types.js'

export interface ConfigRuntimeDeps {
  /** Read on every call, so a context captured in onStart sees POST /config-update. */
  values: () => Record<string, unknown>
  schema: Record<string, ConfigFieldDescriptor>
  envAllowList: ReadonlySet<string>
  env: NodeJS.ProcessEnv
  logger: HayLogger
}

/** Hay's resolution order: org value → env var named by the field, if allow-listed → default. */
export function createConfigRuntime(deps: ConfigRuntimeDeps): HayConfigRuntimeAPI {
  const resolveValue = (key: string): unknown => {
    const own = deps.values()[key]
    if (own !== undefined && own !== null) return own
    const field = deps.schema[key]
    if (!field) return undefined
    if (typeof field.env === 'string' && deps.envAllowList.has(field.env)) {
      const text = deps.env[field.env]
      if (text !== undefined) return fromEnv(text, field, key, deps.logger)
    }
    return field.default
  }
  return {
    get<T = unknown>(key: string): T {
      const value = resolveValue(key)
      if (value === undefined && deps.schema[key]?.required) throw new Error(`config field "${key}" is required but not configured`)
      return value as T
    },
    getOptional<T = unknown>(key: string): T | undefined {
      return resolveValue(key) as T | undefined
    },
    keys: () => Object.keys(deps.schema),
    toEnv(mapping) {
      const out: Record<string, string> = {}
      for (const [key, envName] of Object.entries(mapping)) {
        const value = resolveValue(key)
        if (value !== undefined && value !== null) out[envName] = typeof value === 'string' ? value : JSON.stringify(value)
      }
      return out
    },
  }
}

function fromEnv(text: string, field: ConfigFieldDescriptor, key: string, logger: HayLogger): unknown {
  switch (field.type) {
    case 'number': {
      const n = Number(text)
      if (Number.isNaN(n)) logger.warn(`config field "${key}": env value is not a number`)
      return Number.isNaN(n) ? undefined : n
    }
    case 'boolean':
      return ['true', '1', 'yes'].includes(text.trim().toLowerCase())
    case 'json':
      try {
        return JSON.parse(text)
      } catch {
        logger.warn(`config field "${key}": env value is not valid JSON`)
        return undefined
      }
    default:
      return text
  }
}

export function createAuthRuntime(state: AuthState | null): HayAuthRuntimeAPI {
  return { get: () => (state ? { methodId: state.methodId, credentials: { ...state.credentials } } : null) }
}
