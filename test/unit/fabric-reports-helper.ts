/** Reads a health report with the simulator's strict XML reader (independent of the agent's parser). */
import { parseStrictXml, type SElement } from '../fabric/strictxml';

function first(el: SElement, local: string): SElement | undefined {
  for (const c of el.children) {
    if (c.local === local) return c;
    const d = first(c, local);
    if (d) return d;
  }
  return undefined;
}

export function parseHealthStrict(xml: string): { state?: string; subStatus?: string; description?: string } {
  const root = parseStrictXml(xml);
  return { state: first(root, 'State')?.text, subStatus: first(root, 'SubStatus')?.text, description: first(root, 'Description')?.text };
}
