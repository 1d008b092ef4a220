import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto'
import { GatewayError } from '../../core/index.js'
import { isSealed, makeSealed, parseSealed } from '../index.js'
import type { Sealed, SecretBox } from '../index.js'

// Format v1: AES-256-GCM, a fresh random 96-bit IV per value, a 128-bit tag; payload = iv | ciphertext | tag.
const VERSION = 1
const KEY_BYTES = 32
const IV_BYTES = 12
const TAG_BYTES = 16

const unreadable = (message: string, cause?: unknown) =>
  new GatewayError('SECRETS_UNREADABLE', 500, message, cause === undefined ? undefined : { cause })

/**
 * A key's public id: 8 hex chars of HMAC-SHA256(key, label). Stored beside each value so a wrong
 * SECRET_KEY is named as such, and a rotation knows which values still need sealing under the new key.
 */
export function secretKeyId(key: Uint8Array): string {
  return createHmac('sha256', key).update('plugin-gateway secret key id').digest('hex').slice(0, 8)
}

export interface AesGcmSecretBoxOptions {
  /** The 32-byte key that seals (and opens). */
  key: Uint8Array
  /** Older keys that still open values they sealed (SECRET_KEY_PREVIOUS, during a key rotation). */
  previousKeys?: readonly Uint8Array[]
  /** Names the key in messages; SECRET_KEY unless the key was generated. */
  source?: string
}

export function createAesGcmSecretBox(opts: AesGcmSecretBoxOptions): SecretBox {
  const keys = new Map<string, Buffer>()
  for (const key of [opts.key, ...(opts.previousKeys ?? [])]) {
    if (key.length !== KEY_BYTES) throw new GatewayError('INTERNAL', 500, `a secret key must be ${KEY_BYTES} bytes, got ${key.length}`)
    keys.set(secretKeyId(key), Buffer.from(key))
  }
  const currentId = secretKeyId(opts.key)
  const currentKey = keys.get(currentId) as Buffer // set just above
  const describeKey = () => `${opts.source ?? 'SECRET_KEY'} is key ${currentId}`
  // The header and the caller's context are authenticated: a value moved elsewhere does not open.
  const aad = (keyId: string, context: string) => Buffer.from(`v${VERSION}:${keyId}:${context}`, 'utf8')

  return {
    hasKey: true,
    keyIds: [...keys.keys()],
    describeKey,
    isSealed,

    seal(plain: unknown, context: string): Sealed {
      const json = JSON.stringify(plain)
      if (json === undefined) throw new GatewayError('INTERNAL', 500, 'cannot seal a value with no JSON form')
      const iv = randomBytes(IV_BYTES)
      const cipher = createCipheriv('aes-256-gcm', currentKey, iv, { authTagLength: TAG_BYTES })
      cipher.setAAD(aad(currentId, context))
      const body = Buffer.concat([cipher.update(json, 'utf8'), cipher.final()])
      return makeSealed(VERSION, currentId, Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url'))
    },

    open(sealed: Sealed, context: string): unknown {
      const parts = parseSealed(sealed)
      if (!parts || parts.version !== VERSION) throw unreadable('a stored secret has an unknown format')
      const key = keys.get(parts.keyId)
      if (!key) {
        throw unreadable(
          `a stored secret was sealed with key ${parts.keyId}, but ${describeKey()}: set SECRET_KEY to the key the secrets were sealed with (while rotating, list it in SECRET_KEY_PREVIOUS)`,
        )
      }
      const raw = Buffer.from(parts.payload, 'base64url')
      if (raw.length < IV_BYTES + TAG_BYTES) throw unreadable('a stored secret is truncated')
      let json: string
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, raw.subarray(0, IV_BYTES), { authTagLength: TAG_BYTES })
        decipher.setAAD(aad(parts.keyId, context))
        decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
        json = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8')
      } catch (err) {
        // GCM checks the tag in final(): nothing decrypted is ever returned unless it authenticates.
        throw unreadable('a stored secret failed authentication: it was altered, or sealed for another org, plugin or field', err)
      }
      return JSON.parse(json) as unknown
    },
  }
}
