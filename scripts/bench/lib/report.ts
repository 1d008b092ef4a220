// What a scenario hands back: tables, notes and targets. The orchestrator renders them to Markdown.

export interface Table {
  headers: string[]
  rows: string[][]
}

export interface Target {
  name: string
  /** The measured value as shown, e.g. "1.07× (14,210 vs 13,280 rps)". */
  value: string
  goal: string
  /** null: not measured (skipped), shown as SKIP. */
  pass: boolean | null
}

export interface Section {
  title: string
  /** One paragraph: what was measured and how. */
  method: string
  tables: Table[]
  notes: string[]
  targets: Target[]
}

export const target = (name: string, goal: string, value: string, pass: boolean | null): Target => ({ name, goal, value, pass })

/** A Markdown table with its columns padded to one width, so the file reads as well as it renders. */
export function renderTable(t: Table): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|')
  const rows = [t.headers, ...t.rows].map((r) => r.map(esc))
  const widths = t.headers.map((_, i) => Math.max(3, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) => `| ${widths.map((w, i) => (cells[i] ?? '').padEnd(w)).join(' | ')} |`
  const [head = [], ...body] = rows
  return [line(head), `| ${widths.map((w) => '-'.repeat(w)).join(' | ')} |`, ...body.map(line)].join('\n')
}

export function renderTargets(targets: readonly Target[]): string {
  const verdict = (p: boolean | null) => (p === null ? 'SKIP' : p ? '**PASS**' : '**MISS**')
  return renderTable({
    headers: ['target', 'goal', 'measured', 'result'],
    rows: targets.map((t) => [t.name, t.goal, t.value, verdict(t.pass)]),
  })
}

export function renderSection(s: Section, index: number): string {
  const parts = [`### ${index}. ${s.title}`, '', s.method, '']
  for (const t of s.tables) parts.push(renderTable(t), '')
  for (const n of s.notes) parts.push(`- ${n}`)
  if (s.notes.length > 0) parts.push('')
  return parts.join('\n')
}

/** A scenario that failed outright still gets a section, so the report shows what happened. */
export function failedSection(title: string, err: unknown): Section {
  const message = err instanceof Error ? err.message : String(err)
  return { title, method: `**This scenario failed:** ${message.split('\n')[0]}`, tables: [], notes: [], targets: [] }
}
