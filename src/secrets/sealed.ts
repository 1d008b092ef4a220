import type { Sealed } from './types.js'

/** The tag of a sealed value in stored JSON. */
export const SEALED_TAG = '$sealed'

/** What admin responses show instead of a secret; sending it back in a config PUT keeps the stored value. */
export const MASK = '********'

// v<format>:<key id, 8 hex>:<base64url payload>. The format names the cipher and layout; the key id
// lets a later key rotation keep opening values sealed under older keys.
const SEALED_TEXT = /^v(\d{1,3}):([0-9a-f]{8}):([A-Za-z0-9_-]+)$/

export interface SealedParts {
  version: number
  keyId: string
  payload: string
}

/** True for exactly `{"$sealed":"v<n>:<keyId>:<payload>"}`: one own key, well-formed text. */
export function isSealed(value: unknown): value is Sealed {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false
  const keys = Object.keys(value)
  if (keys.length !== 1 || keys[0] !== SEALED_TAG) return false
  const text = (value as Record<string, unknown>)[SEALED_TAG]
  return typeof text === 'string' && SEALED_TEXT.test(text)
}

export function parseSealed(sealed: Sealed): SealedParts | null {
  const m = SEALED_TEXT.exec(sealed.$sealed)
  if (!m?.[1] || !m[2] || !m[3]) return null
  return { version: Number(m[1]), keyId: m[2], payload: m[3] }
}

export const makeSealed = (version: number, keyId: string, payload: string): Sealed => ({
  [SEALED_TAG]: `v${version}:${keyId}:${payload}`,
})
