import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { readdir, readFile, readlink } from 'node:fs/promises'
import { join } from 'node:path'

/** Files hashed under the entry's directory at most; a plugin pointing its entry at a huge tree stays cheap to scan. */
export const MAX_CHECKSUM_FILES = 5_000

// Files Node loads as a plugin's code, and files without an extension (scripts). Not what a plugin
// may write beside its code at run time with the sandbox off (logs, caches, data): each write would
// change its checksum, so a rescan would roll its workers, whose writes would change it again.
const CODE_FILE = /\.(?:[cm]?[jt]s|json|node|wasm)$/

/** Whether an entry named name below a plugin's directory is walked: not installed dependencies, not hidden. */
export const isWalked = (name: string): boolean => !name.startsWith('.') && name !== 'node_modules'

/** Whether a file named name is the plugin's code, which the checksum hashes. */
export const isCodeFile = (name: string): boolean => CODE_FILE.test(name) || !name.includes('.')

/**
 * sha256 over package.json's bytes and every code file under the entry's directory (CONTRACT.md §1:
 * a changed checksum marks cached metadata stale; see isCodeFile). Directories are walked in sorted
 * order so the result is stable across runs and machines; node_modules and dotfiles are skipped
 * (installed dependencies and editor/VCS litter are not the plugin's code). Symlinks are hashed by target,
 * never followed, so a link cannot pull files from outside the plugin into the walk. Past
 * maxFiles the walk stops: the hash then covers a stable prefix of the tree.
 */
export async function checksumPlugin(manifestBytes: Uint8Array, entryDir: string, maxFiles: number = MAX_CHECKSUM_FILES): Promise<string> {
  const hash = createHash('sha256')
  hash.update('package.json\0')
  hash.update(manifestBytes)
  const budget = { files: maxFiles }
  await hashTree(hash, entryDir, '', budget)
  if (budget.files < 0) hash.update('\0truncated')
  return hash.digest('hex')
}

async function hashTree(hash: Hash, root: string, rel: string, budget: { files: number }): Promise<void> {
  const entries = await readdir(join(root, rel), { withFileTypes: true })
  const names = entries
    .filter((e) => isWalked(e.name) && (e.isDirectory() || e.isSymbolicLink() || isCodeFile(e.name)))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  for (const e of names) {
    if (budget.files < 0) return
    const path = rel === '' ? e.name : `${rel}/${e.name}`
    if (e.isDirectory()) {
      await hashTree(hash, root, path, budget)
    } else if (budget.files-- === 0) {
      return // budget.files is now -1: marks the hash truncated
    } else if (e.isSymbolicLink()) {
      hash.update(`\0link\0${path}\0${await readlink(join(root, path))}`)
    } else if (e.isFile()) {
      const bytes = await readFile(join(root, path))
      hash.update(`\0file\0${path}\0${bytes.byteLength}\0`)
      hash.update(bytes)
    }
  }
}
