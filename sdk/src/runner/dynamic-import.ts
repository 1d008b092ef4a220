/**
 * import() of specifier for the bundle: through a file of its own beside it (import-module.cjs), which
 * is loaded only on this path (scripts/build-runner.mjs).
 */
export async function importModule(specifier: string): Promise<unknown> {
  const { default: load } = await import('./import-module.cjs')
  return load(specifier)
}
