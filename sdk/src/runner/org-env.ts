import type { AuthState, HayOrg } from '../types.js'
import { RunnerError } from './errors.js'
import { isRecord, messageOf } from './guards.js'

export interface OrgData {
  org: HayOrg
  config: Record<string, unknown>
  auth: AuthState | null
}

/**
 * HAY_ORG_CONFIG = {"org":{"id"},"config":{…}}, HAY_ORG_AUTH = {"methodId","credentials"} (optional),
 * CONTRACT.md §2. Malformed JSON fails the start; a missing HAY_ORG_CONFIG means an empty config for
 * --org-id. Test mode ignores the environment, as in Hay's runner.
 */
export function loadOrgData(env: NodeJS.ProcessEnv, orgId: string, mode: 'production' | 'test'): OrgData {
  if (mode === 'test') return { org: { id: orgId, name: `Test Org ${orgId}` }, config: {}, auth: null }
  const orgConfig = parseEnvJson(env, 'HAY_ORG_CONFIG')
  if (orgConfig !== undefined && !isRecord(orgConfig)) throw new RunnerError('ORG_ENV_INVALID', 'HAY_ORG_CONFIG must be a JSON object')
  const org = isRecord(orgConfig?.org) ? orgConfig.org : {}
  const config = orgConfig?.config
  return {
    org: {
      id: typeof org.id === 'string' && org.id !== '' ? org.id : orgId,
      ...(typeof org.name === 'string' && { name: org.name }),
    },
    config: isRecord(config) ? config : {},
    auth: toAuthState(parseEnvJson(env, 'HAY_ORG_AUTH')),
  }
}

/** `{methodId, credentials}` with a non-empty method id and an object of credentials, else null. */
export function toAuthState(value: unknown): AuthState | null {
  if (!isRecord(value)) return null
  const { methodId, credentials } = value
  if (typeof methodId !== 'string' || methodId === '' || !isRecord(credentials)) return null
  return { methodId, credentials }
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
