/**
 * A value sealed by a SecretBox, stored in place of the plaintext (a config field's value, or an
 * auth state's whole `credentials` object): `{"$sealed":"v1:<keyId>:<base64url>"}`.
 * A type alias, not an interface, so sealed credentials still fit `Record<string, unknown>`.
 */
export type Sealed = {
  readonly $sealed: string
}

/**
 * Seals and opens secrets at rest. Runtime-agnostic: the Node entry injects the node:crypto
 * implementation (src/secrets/node); without a key, `createUnavailableSecretBox()` refuses both.
 */
export interface SecretBox {
  /** False when no key is configured: seal and open throw SECRETS_UNAVAILABLE. */
  readonly hasKey: boolean
  /** Ids of the keys this box opens (the first one seals); empty without a key. */
  readonly keyIds: readonly string[]
  /** Where the sealing key comes from and which it is, for messages: "SECRET_KEY is key 1a2b3c4d". Never the key. */
  describeKey(): string
  /**
   * Encrypts JSON-serialisable `plain` under the current key. `context` is authenticated but not
   * stored: the same context must be given to open, so a value copied to another org, plugin or
   * field does not open there.
   */
  seal(plain: unknown, context: string): Sealed
  /** Decrypts; throws SECRETS_UNREADABLE (never returns garbage) for a wrong key, context or a tampered value. */
  open(sealed: Sealed, context: string): unknown
  isSealed(value: unknown): value is Sealed
}
