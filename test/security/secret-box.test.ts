import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../../src/config.js'
import { isGatewayError } from '../../src/core/index.js'
import {
  createUnavailableSecretBox,
  isSealed,
  MASK,
  maskConfig,
  maskMetadata,
  openAuth,
  openConfig,
  parseSealed,
  resealUnderCurrentKey,
  sealAuth,
  sealConfig,
  unmaskConfig,
  type Sealed,
} from '../../src/secrets/index.js'
import { createAesGcmSecretBox, secretBoxFromHex, secretKeyId } from '../../src/secrets/node/index.js'

const key = randomBytes(32)
const box = createAesGcmSecretBox({ key })
const ref = { orgId: 'acme', pluginId: 'webhook' }

/** Runs fn and returns the coded error it threw. */
function codeOf(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    if (isGatewayError(err)) return err.code
    throw err
  }
  throw new Error('expected a GatewayError')
}

describe('AES-256-GCM secret box', () => {
  it('round-trips any JSON value and never stores the plaintext', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.string(), (value, context) => {
        const sealed = box.seal(value, context)
        expect(isSealed(sealed)).toBe(true)
        expect(box.open(sealed, context)).toEqual(JSON.parse(JSON.stringify(value)))
        if (typeof value === 'string' && value.length > 3) expect(sealed.$sealed).not.toContain(value)
      }),
      { numRuns: 200 },
    )
  })

  it('uses a fresh IV for every value: the same secret seals differently each time', () => {
    const a = box.seal('same secret', 'ctx')
    const b = box.seal('same secret', 'ctx')
    expect(a.$sealed).not.toBe(b.$sealed)
    expect(parseSealed(a)).toMatchObject({ version: 1, keyId: secretKeyId(key) })
    const ivOf = (s: Sealed) =>
      Buffer.from(parseSealed(s)?.payload ?? '', 'base64url')
        .subarray(0, 12)
        .toString('hex')
    expect(ivOf(a)).not.toBe(ivOf(b))
  })

  it('refuses a value altered anywhere, opened in another context, or under another key', () => {
    const sealed = box.seal({ apiKey: 'whk_0123456789' }, 'auth:acme:webhook')
    const parts = parseSealed(sealed)
    if (!parts) throw new Error('unparsable')
    const raw = Buffer.from(parts.payload, 'base64url')
    fc.assert(
      fc.property(fc.nat({ max: raw.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = Buffer.from(raw)
        bad[at] = (bad[at] ?? 0) ^ xor
        const tampered = { $sealed: `v1:${parts.keyId}:${bad.toString('base64url')}` }
        expect(codeOf(() => box.open(tampered, 'auth:acme:webhook'))).toBe('SECRETS_UNREADABLE')
      }),
      { numRuns: 100 },
    )
    expect(codeOf(() => box.open(sealed, 'auth:other-org:webhook'))).toBe('SECRETS_UNREADABLE')
    expect(codeOf(() => box.open({ $sealed: `v1:${parts.keyId}:AAAA` }, 'auth:acme:webhook'))).toBe('SECRETS_UNREADABLE')
    expect(codeOf(() => box.open({ $sealed: `v2:${parts.keyId}:${parts.payload}` }, 'auth:acme:webhook'))).toBe('SECRETS_UNREADABLE')

    const otherKey = createAesGcmSecretBox({ key: randomBytes(32) })
    let message = ''
    try {
      otherKey.open(sealed, 'auth:acme:webhook')
    } catch (err) {
      message = (err as Error).message
      expect(isGatewayError(err) && err.code).toBe('SECRETS_UNREADABLE')
    }
    expect(message).toContain('SECRET_KEY')
    expect(message).toContain(parts.keyId)
  })

  it('opens values sealed under a previous key, so keys can rotate', () => {
    const old = randomBytes(32)
    const sealed = createAesGcmSecretBox({ key: old }).seal('s3cret', 'ctx')
    const rotated = createAesGcmSecretBox({ key: randomBytes(32), previousKeys: [old] })
    expect(rotated.open(sealed, 'ctx')).toBe('s3cret')
    expect(parseSealed(rotated.seal('s3cret', 'ctx'))?.keyId).toBe(rotated.keyIds[0])
  })

  it('without a key, recognises sealed values but refuses to seal or open (SECRETS_UNAVAILABLE)', () => {
    const none = createUnavailableSecretBox()
    expect(none.hasKey).toBe(false)
    expect(none.isSealed(box.seal(1, 'c'))).toBe(true)
    expect(codeOf(() => none.seal('x', 'c'))).toBe('SECRETS_UNAVAILABLE')
    expect(codeOf(() => none.open(box.seal(1, 'c'), 'c'))).toBe('SECRETS_UNAVAILABLE')
    expect(secretBoxFromHex(undefined).hasKey).toBe(false)
    expect(secretBoxFromHex(key.toString('hex')).keyIds).toEqual([secretKeyId(key)])
  })
})

describe('instance secrets', () => {
  const schema = {
    webhookSecret: { type: 'string' as const, encrypted: true },
    label: { type: 'string' as const },
  }

  it('seals only the encrypted fields of a known schema, every field of an unknown one, never null', () => {
    const stored = sealConfig(box, ref, schema, { webhookSecret: 'shh', label: 'public', apiKey: null })
    expect(isSealed(stored.webhookSecret)).toBe(true)
    expect(stored.label).toBe('public')
    expect(stored.apiKey).toBeNull()
    expect(openConfig(box, ref, stored)).toEqual({ webhookSecret: 'shh', label: 'public', apiKey: null })

    const unknown = sealConfig(box, ref, null, { label: 'public' })
    expect(isSealed(unknown.label)).toBe(true)
    // Bound to its place: the same sealed value does not open for another org.
    expect(codeOf(() => openConfig(box, { orgId: 'other', pluginId: 'webhook' }, stored))).toBe('SECRETS_UNREADABLE')
  })

  it('masks sealed values and encrypted fields, and a mask sent back keeps the stored value', () => {
    const stored = sealConfig(box, ref, schema, { webhookSecret: 'shh', label: 'public' })
    expect(maskConfig(stored, schema)).toEqual({ webhookSecret: MASK, label: 'public' })
    expect(maskConfig({ webhookSecret: 'plaintext-from-an-old-row' }, schema)).toEqual({ webhookSecret: MASK })
    expect(unmaskConfig(box, ref, { webhookSecret: MASK, label: 'new' }, stored)).toEqual({ webhookSecret: 'shh', label: 'new' })
    expect(codeOf(() => unmaskConfig(box, ref, { webhookSecret: MASK }, {}))).toBe('CONFIG_INVALID')
    expect(codeOf(() => unmaskConfig(box, ref, { label: stored.webhookSecret }, stored))).toBe('CONFIG_INVALID')
  })

  it('masks an OAuth client secret in plugin metadata, and leaves the rest alone', () => {
    const metadata = {
      configSchema: {},
      authMethods: [
        {
          type: 'oauth2' as const,
          id: 'oauth',
          label: 'OAuth',
          authorizationUrl: 'https://a',
          tokenUrl: 'https://t',
          scopes: [],
          clientId: 'id',
          clientSecret: 'cs-123',
        },
        { type: 'apiKey' as const, id: 'apiKey', label: 'API key' },
      ],
      uiExtensions: [],
      pages: [],
      routes: [],
      mcp: { local: [], external: [] },
    }
    const masked = maskMetadata(metadata)
    expect(JSON.stringify(masked)).not.toContain('cs-123')
    expect(masked?.authMethods[0]).toMatchObject({ clientId: 'id', clientSecret: MASK })
    expect(masked?.authMethods[1]).toBe(metadata.authMethods[1])
    expect(maskMetadata(null)).toBeNull()
  })

  it('seals again under the current key what a previous key sealed, and leaves the rest as it is', () => {
    const oldKey = randomBytes(32)
    const before = createAesGcmSecretBox({ key: oldKey })
    const after = createAesGcmSecretBox({ key, previousKeys: [oldKey] })
    const row = {
      config: {
        ...sealConfig(before, ref, schema, { webhookSecret: 'shh' }),
        current: box.seal('kept', 'config:acme:webhook:current'),
        label: 'public',
      },
      authState: sealAuth(before, ref, { methodId: 'apiKey', credentials: { apiKey: 'whk_0123456789' } }),
    }
    const next = resealUnderCurrentKey(after, ref, row)
    expect(next?.config.current).toBe(row.config.current) // already under the current key: untouched
    expect(next?.config.label).toBe('public')
    for (const value of [next?.config.webhookSecret, next?.authState?.credentials]) {
      expect(parseSealed(value as Sealed)?.keyId).toBe(secretKeyId(key))
    }
    // Only the current key is needed from now on.
    expect(openConfig(box, ref, next?.config ?? {})).toEqual({ webhookSecret: 'shh', current: 'kept', label: 'public' })
    expect(openAuth(box, ref, next?.authState ?? null)?.credentials).toEqual({ apiKey: 'whk_0123456789' })

    expect(resealUnderCurrentKey(after, ref, { config: next?.config ?? {}, authState: next?.authState ?? null })).toBeNull()
    expect(resealUnderCurrentKey(createUnavailableSecretBox(), ref, row)).toBeNull()
  })

  it('seals the whole credentials object of an auth state', () => {
    const stored = sealAuth(box, ref, { methodId: 'apiKey', credentials: { apiKey: 'whk_0123456789' } })
    expect(stored.methodId).toBe('apiKey')
    expect(isSealed(stored.credentials)).toBe(true)
    expect(JSON.stringify(stored)).not.toContain('whk_')
    expect(openAuth(box, ref, stored)).toEqual({ methodId: 'apiKey', credentials: { apiKey: 'whk_0123456789' } })
    expect(openAuth(box, ref, null)).toBeNull()
  })
})

describe('SECRET_KEY configuration', () => {
  const hex = randomBytes(32).toString('hex')

  it('accepts 32 bytes as hex, base64 or base64url, and keeps the key out of the serialised config', () => {
    const fromHex = loadConfig({ SECRET_KEY: hex })
    const b64 = Buffer.from(hex, 'hex').toString('base64')
    expect(fromHex.secrets.key?.()).toBe(hex)
    expect(loadConfig({ SECRET_KEY: b64 }).secrets.key?.()).toBe(hex)
    expect(loadConfig({ SECRET_KEY: Buffer.from(hex, 'hex').toString('base64url') }).secrets.key?.()).toBe(hex)
    expect(loadConfig({ SECRET_KEY: hex.toUpperCase() }).secrets.key?.()).toBe(hex)
    expect(loadConfig({}).secrets.key).toBeUndefined()
    expect(JSON.stringify(fromHex)).not.toContain(hex)
  })

  it('refuses a key of the wrong size or alphabet with an error naming SECRET_KEY', () => {
    for (const bad of ['', 'short', hex.slice(2), `${hex}00`, randomBytes(16).toString('base64'), `${hex.slice(1)}g`]) {
      expect(() => loadConfig({ SECRET_KEY: bad })).toThrow(ConfigError)
      expect(() => loadConfig({ SECRET_KEY: bad })).toThrow(/SECRET_KEY/)
    }
  })

  it('takes previous keys (SECRET_KEY_PREVIOUS, comma-separated, hex or base64) only beside SECRET_KEY', () => {
    const old1 = randomBytes(32)
    const old2 = randomBytes(32)
    const config = loadConfig({ SECRET_KEY: hex, SECRET_KEY_PREVIOUS: `${old1.toString('hex')}, ${old2.toString('base64')}` })
    expect(config.secrets.previousKeys()).toEqual([old1.toString('hex'), old2.toString('hex')])
    expect(JSON.stringify(config)).not.toContain(old1.toString('hex'))
    expect(loadConfig({ SECRET_KEY: hex }).secrets.previousKeys()).toEqual([])

    expect(() => loadConfig({ SECRET_KEY: hex, SECRET_KEY_PREVIOUS: `${old1.toString('hex')},short` })).toThrow(
      /SECRET_KEY_PREVIOUS: key 2/,
    )
    expect(() => loadConfig({ SECRET_KEY_PREVIOUS: old1.toString('hex') })).toThrow(/SECRET_KEY_PREVIOUS: needs SECRET_KEY/)

    const rotated = secretBoxFromHex(hex, config.secrets.previousKeys())
    expect(rotated.keyIds).toEqual([secretKeyId(Buffer.from(hex, 'hex')), secretKeyId(old1), secretKeyId(old2)])
  })

  it('keeps the admin token, database URL and keys out of what an allow-list can hand a worker', () => {
    const config = loadConfig({
      ADMIN_TOKEN: 'admin-token-0123456789',
      SECRET_KEY: hex,
      SECRET_KEY_PREVIOUS: randomBytes(32).toString('hex'),
      DATABASE_URL: 'file:/tmp/x.db',
      DATABASE_AUTH_TOKEN: 'db-token',
      CLUSTER_SECRET: 'cluster-secret-0123456789',
      SOME_PLUGIN_VAR: 'ok',
    })
    expect(Object.keys(config.pool.hostEnv)).toEqual(['SOME_PLUGIN_VAR'])
  })
})
