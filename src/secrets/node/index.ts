// The Node adapter of src/secrets: the node:crypto SecretBox. Only the Node entry imports this door.
export { createAesGcmSecretBox, secretKeyId } from './aes-gcm.js'
export type { AesGcmSecretBoxOptions } from './aes-gcm.js'
export { openSecretBox, secretBoxFromHex } from './from-config.js'
export type { SecretKeySettings } from './from-config.js'
export { createGeneratedKeySecretBox, generatedKeyPath } from './generated-key.js'
export { readKeyFile, readOrCreateKeyFile } from './key-file.js'
