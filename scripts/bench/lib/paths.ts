import { existsSync } from 'node:fs'
import { delimiter, join, resolve } from 'node:path'

export const ROOT = resolve(import.meta.dirname, '..', '..', '..')
export const GATEWAY_MAIN = join(ROOT, 'dist', 'node', 'main.js')
export const EXAMPLES_DIR = join(ROOT, 'examples', 'plugins')
export const FIXTURES_DIR = join(ROOT, 'test', 'fixtures', 'plugins')
export const PROXIES_DIR = join(ROOT, 'scripts', 'bench', 'proxies')

/** A binary on PATH or in the sbin directories Debian puts daemons in; null when absent. */
export function findBinary(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/sbin', '/usr/local/sbin', '/sbin']
  for (const dir of dirs) {
    const candidate = join(dir, name)
    if (dir && existsSync(candidate)) return candidate
  }
  return null
}
