import { randomBytes } from 'node:crypto'
import { closeSync, fsyncSync, linkSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'
import { GatewayError } from '../../core/index.js'

const KEY_BYTES = 32
// The file holds the key as 64 hex chars (a line), the format SECRET_KEY and SECRET_KEY_PREVIOUS take.
const KEY_TEXT = /^[0-9a-f]{64}$/

/** The key in a generated key file; undefined when the file does not exist. */
export function readKeyFile(path: string): Buffer | undefined {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new GatewayError('SECRETS_UNREADABLE', 500, `cannot read the generated key file ${path}`, { cause: err })
  }
  const hex = text.trim()
  if (!KEY_TEXT.test(hex)) {
    throw new GatewayError('SECRETS_UNREADABLE', 500, `the generated key file ${path} does not hold a key (64 hex chars)`)
  }
  return Buffer.from(hex, 'hex')
}

/**
 * The key in the file at path, created first (32 random bytes, mode 0600) when there is none.
 * Written whole to a private temporary file, then published with link(2), which fails with EEXIST
 * exactly as an O_EXCL create would: of two processes racing on one database, one key wins, the
 * other reads it, and no reader ever sees a half-written file.
 */
export function readOrCreateKeyFile(path: string): Buffer {
  const existing = readKeyFile(path)
  if (existing) return existing
  const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`
  const fd = openSync(temp, 'wx', 0o600)
  try {
    writeSync(fd, `${randomBytes(KEY_BYTES).toString('hex')}\n`)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    linkSync(temp, path)
    syncDirectory(dirname(path)) // the link itself must survive a crash: secrets will be sealed under it
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    // Another process created it first: its key is the one.
  } finally {
    unlinkSync(temp)
  }
  const key = readKeyFile(path)
  if (!key) throw new GatewayError('SECRETS_UNREADABLE', 500, `the generated key file ${path} vanished after it was created`)
  return key
}

function syncDirectory(dir: string): void {
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}
