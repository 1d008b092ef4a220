import type { AuthState, ConfigFieldDescriptor, HayAuthRuntimeAPI, HayConfigRuntimeAPI, HayLogger, HayOrg } from '../types.js'
import { isRecord } from './manifest.js'
import { messageOf, RunnerError } from './errors.js'

// ---------------------------------------------------------------------------------------------
// Org data from the environment (CONTRACT.md §2)
// ---------------------------------------------------------------------------------------------

export interface OrgData {
  org: HayOrg
  config: Record<string, unknown>
  auth: AuthState | null
}

/**
 * HAY_ORG_CONFIG = {"org":{"id"},"config":{…}}, HAY_ORG_AUTH = {"methodId","credentials"} (optional).
 * Malformed JSON is an init failure; a missing HAY_ORG_CONFIG means an empty config for --org-id.
 * In test mode the environment is ignored, as in Hay's runner.
 */
export function loadOrgData(env: NodeJS.ProcessEnv, orgId: string, mode: 'production' | 'test'): OrgData {
  if (mode === 'test') return { org: { id: orgId, name: `Test Org ${orgId}` }, config: {}, auth: null }
  const orgConfig = parseEnvJson(env, 'HAY_ORG_CONFIG')
  const auth = parseEnvJson(env, 'HAY_ORG_AUTH')
  if (orgConfig !== undefined && !isRecord(orgConfig)) {
    throw new RunnerError('ORG_ENV_INVALID', 'HAY_ORG_CONFIG must be a JSON object')
  }
  const org = isRecord(orgConfig?.['org']) ? orgConfig['org'] : {}
  const config = orgConfig?.['config']
  return {
    org: {
      id: typeof org['id'] === 'string' && org['id'] !== '' ? org['id'] : orgId,
      ...(typeof org['name'] === 'string' ? { name: org['name'] } : {}),
    },
    config: isRecord(config) ? config : {},
    auth: toAuthState(auth),
  }
}

function parseEnvJson(env: NodeJS.ProcessEnv, name: string): unknown {
  const text = env[name]
  if (text === undefined || text === '') return undefined
  try {
    return JSON.parse(text)
  } catch (err) {
    throw new RunnerError('ORG_ENV_INVALID', `${name} is not valid JSON: ${messageOf(err)}`, { cause: err })
  }
}

export function toAuthState(value: unknown): AuthState | null {
  if (!isRecord(value)) return null
  const { methodId, credentials } = value
  if (typeof methodId !== 'string' || methodId === '' || !isRecord(credentials)) return null
  return { methodId, credentials }
}

// ---------------------------------------------------------------------------------------------
// ctx.config / ctx.auth
// ---------------------------------------------------------------------------------------------

export interface ConfigRuntimeDeps {
  /** Read on every call, so a context captured in onStart sees POST /config-update. */
  values: () => Record<string, unknown>
  schema: Record<string, ConfigFieldDescriptor>
  envAllowList: ReadonlySet<string>
  env: NodeJS.ProcessEnv
  logger: HayLogger
}

/** Hay's resolution order: org value → allow-listed env var → default → undefined. */
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
      if (value === undefined && deps.schema[key]?.required) {
        throw new Error(`config field "${key}" is required but not configured`)
      }
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

export function createAuthRuntime(state: () => AuthState | null): HayAuthRuntimeAPI {
  return {
    get() {
      const s = state()
      return s ? { methodId: s.methodId, credentials: { ...s.credentials } } : null
    },
  }
}

// ---------------------------------------------------------------------------------------------
// ctx.logger: one line per entry; info/debug to stdout, warn/error to stderr (as Hay's logger)
// ---------------------------------------------------------------------------------------------

export function createLogger(tags: { pluginId: string; orgId: string }, debug: boolean): HayLogger {
  const prefix = `[org:${tags.orgId}][plugin:${tags.pluginId}]`
  const line = (level: string, message: string, meta: unknown) =>
    `${new Date().toISOString()} ${prefix} ${level}: ${message}${meta === undefined ? '' : ` ${formatMeta(meta)}`}\n`
  return {
    debug: (message, meta) => void (debug && process.stdout.write(line('DEBUG', message, meta))),
    info: (message, meta) => void process.stdout.write(line('INFO', message, meta)),
    warn: (message, meta) => void process.stderr.write(line('WARN', message, meta)),
    error: (message, meta) => void process.stderr.write(line('ERROR', message, meta)),
  }
}

function formatMeta(meta: unknown): string {
  if (meta instanceof Error) return JSON.stringify({ name: meta.name, message: meta.message, stack: meta.stack })
  try {
    return JSON.stringify(meta) ?? String(meta)
  } catch {
    return String(meta) // circular or BigInt: fall back to the plain rendering
  }
}
